/* container.h: CONTAINER_OF, the one way from a pointer to an embedded member back to the struct that holds it. */
#ifndef CONTAINER_H
#define CONTAINER_H

#include <stddef.h>   /* offsetof */

/*
 * The `type` whose `member` ptr points at (ptr must not be NULL). No cast
 * relies on the member being first: offsetof does the arithmetic, and the
 * unevaluated conditional makes the compiler check that ptr points to the
 * member's type (a mismatch is a warning, an error under -Werror). Like
 * Linux's container_of the result is not const: assign it to a const
 * pointer when ptr is const.
 */
#define CONTAINER_OF(ptr, type, member) \
	((type *)(void *)((char *)(1 ? (ptr) : &((type *)0)->member) - offsetof(type, member)))

#endif
