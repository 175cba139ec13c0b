// dmabench — CPerf: libpfm4 (ships no .pc file, so no pkgConfig).
#include <perfmon/pfmlib_perf_event.h>
