/* Control: what a scenario may include compiles with the scenario layer's path. */
#include "ax.h"
#include "hist.h"
#include "scenario.h"
#include "scenario_host.h"

int layering_probe(void);
int layering_probe(void) { return 0; }
