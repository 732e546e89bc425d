/*
 * fuzz_overflow.c - a libFuzzer target broken on purpose, built with the
 * fuzz targets' flags by `make check-sanitizers` (it is not in test/fuzz,
 * so `make fuzz` never runs it).
 *
 * Any input whose first four bytes read as an int above 2^30 overflows
 * when doubled; the fuzzer finds one within a few runs. The run must stop
 * there with UBSan's report and a non-zero status, as a real finding in
 * postern's code would.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input: double its first four bytes as a signed int. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	volatile int n;
	int v;

	if (size < sizeof(v))
		return 0;
	memcpy(&v, data, sizeof(v));
	n = v;
	n = n * 2;
	return n == 0;
}
