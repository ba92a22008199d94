// Umbrella header: the whole public C++ API of tmath.
#pragma once

#include "tmath/autodiff.h"
#include "tmath/backend.h"
#include "tmath/device.h"
#include "tmath/dtype.h"
#include "tmath/error.h"
#include "tmath/linalg.h"
#include "tmath/memory.h"
#include "tmath/ops.h"
#include "tmath/precision.h"
#include "tmath/random.h"
#include "tmath/tensor.h"
#include "tmath/transforms.h"
