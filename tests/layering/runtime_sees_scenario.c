/* The runtimes are the lowest layer: no scenario header is on their path. */
#include "ax.h"
#include "scenario.h"

int layering_probe(void);
int layering_probe(void) { return 0; }
