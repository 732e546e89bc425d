/*
 * mutant.h - marks each step the durability promise rests on, so that the
 * mutation check can remove it.
 *
 * `make check-mutants` (scripts/check-mutants) rebuilds the programs with
 * -DPOSTERN_MUTANT='"name"', which turns MUTANT(name) at one site into 1:
 * that fsync, directory fsync or take-back is skipped. The durability tests
 * (test/integ/test_durability.py) must then fail. In every other build
 * MUTANT(name) is the constant 0 and the compiler removes it: there is no
 * run-time switch. Every fsync and directory fsync in src/ carries a
 * marker; test_every_sync_site_is_a_mutant checks that.
 */
#ifndef POSTERN_MUTANT_H
#define POSTERN_MUTANT_H

#ifdef POSTERN_MUTANT
#define MUTANT(name)	(__builtin_strcmp(POSTERN_MUTANT, #name) == 0)
#else
#define MUTANT(name)	0
#endif

#endif
