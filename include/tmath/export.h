// Symbol visibility: everything not marked TMATH_API is hidden.
#pragma once

#if defined(_WIN32)
#define TMATH_API __declspec(dllexport)
#else
#define TMATH_API __attribute__((visibility("default")))
#endif
