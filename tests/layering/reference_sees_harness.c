/* A reference implementation never sees the harness above it. */
#include "reference.h"
#include "harness.h"

int layering_probe(void);
int layering_probe(void) { return 0; }
