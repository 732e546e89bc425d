build/lib/buf.o: src/lib/buf.c src/lib/buf.h src/lib/log.h \
 src/lib/xalloc.h
src/lib/buf.h:
src/lib/log.h:
src/lib/xalloc.h:
