/* A scenario sees ax.h and the scenario API, never the harness. */
#include "scenario.h"
#include "harness.h"

int layering_probe(void);
int layering_probe(void) { return 0; }
