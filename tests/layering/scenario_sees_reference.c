/* A scenario never sees the reference implementations above it. */
#include "scenario.h"
#include "reference.h"

int layering_probe(void);
int layering_probe(void) { return 0; }
