/* A conformance case sees ax.h and conform.h, never the harness. */
#include "conform.h"
#include "harness.h"

int layering_probe(void);
int layering_probe(void) { return 0; }
