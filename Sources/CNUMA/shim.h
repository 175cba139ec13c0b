// dmabench — CNUMA: libnuma.
#include <numa.h>
#include <numaif.h>
