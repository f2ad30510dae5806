// Compiled against the moe layer's include root by the Layers.* tests: the layer below (ops) is visible.
#include "ops/matmul.h"
#include "moe/moe_ffn.h"
