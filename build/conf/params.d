build/conf/params.o: src/conf/params.c src/conf/params.h
src/conf/params.h:
