build/lib/fsio.o: src/lib/fsio.c src/lib/fsio.h src/lib/buf.h
src/lib/fsio.h:
src/lib/buf.h:
