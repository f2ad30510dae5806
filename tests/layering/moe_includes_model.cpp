// Compiled against the moe layer's include root by the Layers.* tests: the MoE core may not see the model layer,
// so this include must fail to resolve.
#include "model/config.h"
