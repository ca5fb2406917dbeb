/* A C file for `heaplab record` to watch GCC's cc1 compile at -O2. */
#include <stddef.h>

struct node { struct node *left, *right; long key; double weight; };

static long fold(const struct node *n) { return n ? n->key + fold(n->left) * 3 - fold(n->right) : 0; }

#define FUNCTION(k) \
    long function_##k(struct node *n, long x) { \
        long acc = 0; \
        for (long i = 0; i < x; i++) { \
            acc += (i * k) % 7 ? fold(n) : (long)(n ? n->weight * i : i); \
            if (acc > 1000 * k) acc /= 3; \
        } \
        switch (x % 5) { case 0: return acc; case 1: return acc * k; case 2: return acc - k; default: return acc ^ k; } \
    }
#define TEN(k) FUNCTION(k##0) FUNCTION(k##1) FUNCTION(k##2) FUNCTION(k##3) FUNCTION(k##4) \
               FUNCTION(k##5) FUNCTION(k##6) FUNCTION(k##7) FUNCTION(k##8) FUNCTION(k##9)
TEN(1) TEN(2)

long total(struct node *n) {
    return function_10(n, 3) + function_15(n, 4) + function_29(n, 5);
}
