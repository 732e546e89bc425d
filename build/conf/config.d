build/conf/config.o: src/conf/config.c src/conf/config.h \
 src/conf/params.h src/lib/buf.h src/lib/fsio.h src/lib/log.h \
 src/lib/util.h src/lib/xalloc.h
src/conf/config.h:
src/conf/params.h:
src/lib/buf.h:
src/lib/fsio.h:
src/lib/log.h:
src/lib/util.h:
src/lib/xalloc.h:
