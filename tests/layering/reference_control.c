/* Control: what a reference may include compiles with the reference layer's path. */
#include "ax.h"
#include "reference.h"
#include "scenario_host.h"
#include "native/native.h"

int layering_probe(void);
int layering_probe(void) { return 0; }
