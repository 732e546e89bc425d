build/lib/xalloc.o: src/lib/xalloc.c src/lib/log.h src/lib/xalloc.h
src/lib/log.h:
src/lib/xalloc.h:
