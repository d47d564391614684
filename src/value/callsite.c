/* callsite.c - what the header's call macros record (beehive.h, "Calls
 * through macros"): the caller's file, line and function, which the frame
 * of an error the call raises shows instead of a line of the library; and,
 * in a debug build of the caller, each argument's C type checked against
 * the letter of the format that will read it, since va_arg cannot see a
 * mismatch: an int read as 'I' packs 4294967293 for -3, and an int *
 * unpacked as 'I' gets 8 bytes written into 4. */
#include <string.h>

#include "value/callsite.h"
#include "value/value.h"
#include "value/fmt.h"

/* The last call recorded on this thread. A call takes it at its entry,
 * before its fiber can be suspended, so another task's call cannot come
 * in between. */
static _Thread_local bh__site last;

bool
bh__site_take(const char *call, bh__site *out) {
  bool ok = last.call != NULL && strcmp(last.call, call) == 0;

  if (ok && out != NULL)
    *out = last;
  last.call = NULL;
  return ok;
}

/* ------------------------------------------------------------------------
 * Arguments against the format. The macros give each argument a class
 * (BH__ARG_CLASS in beehive.h): by value 'i' (int or narrower), 'l' (64
 * bits), 'd' (double or float), 'x' (long double); by pointer 'B' bool,
 * 'c' char, 'h' short, 'n' int, 'm' unsigned, 'q' int64_t, 'Q' uint64_t
 * (size_t), 'D' double, 'F' float, 'P' a pointer to a pointer, 'p' any
 * other pointer (NULL, void *, a struct), which passes wherever a pointer
 * goes. */

#define ANY_PTR "BchnmqQDFPp"

/* What one argument must be: the classes that fit, and how to say it. */
typedef struct slot {
  const char *fits;
  const char *what;
} slot;

static const slot V_INT = {"i", "an int"};
static const slot V_UINT = {"i", "an unsigned"};
static const slot V_I64 = {"l", "an int64_t: cast it, (int64_t)x"};
static const slot V_U64 = {"l", "a uint64_t: cast it, (uint64_t)x"};
static const slot V_DBL = {"d", "a double: write 1.0 or cast it"};
static const slot V_SIZE = {"l", "a size_t: cast it, (size_t)n"};
static const slot V_STR = {ANY_PTR, "a const char *"};
static const slot V_PTR = {ANY_PTR, "a pointer"};
static const slot V_OBJ = {ANY_PTR, "a const msgpack_object *"};
static const slot V_VAL = {ANY_PTR, "a const bh_value *"};
static const slot P_INT = {"np", "an int *"};
static const slot P_UINT = {"mp", "an unsigned *"};
static const slot P_I64 = {"qp", "an int64_t *"};
static const slot P_U64 = {"Qp", "a uint64_t *"};
static const slot P_DBL = {"Dp", "a double *"};
static const slot P_BUF = {"cp", "a char * buffer"};
static const slot P_STRP = {"Pp", "a const char **"};
static const slot P_BINP = {"Pp", "a const void **"};
static const slot P_OBJP = {"Pp", "a const msgpack_object **"};
static const slot P_SIZE = {"Qp", "a size_t *"};
/* A C array's items (#X): any pointer (their type is not checked). */
static const slot C_ITEMS = {ANY_PTR, "a pointer to the array's items"};

typedef struct argcheck {
  const char *fmt;
  size_t pos;        /* the next token */
  const char *types; /* the arguments' classes */
  size_t n;          /* the next argument */
  bool unpack;
  int letter;        /* the token being checked, and its offset */
  size_t at;
  const slot *bad;   /* what argument n should have been */
} argcheck;

/* The next argument must fit s. False (with a->bad) when it does not. */
static bool
take(argcheck *a, const slot *s) {
  char c = a->types[a->n];

  if (c == '\0' || strchr(s->fits, c) == NULL) {
    a->bad = s;
    return false;
  }
  a->n++;
  return true;
}

static bool
take2(argcheck *a, const slot *s1, const slot *s2) {
  return take(a, s1) && take(a, s2);
}

/* What an unpacked C array's items are: a pointer to its element. */
static const slot *
carray_target(int elem) {
  switch (elem) {
  case 'b':
  case 'i':
    return &P_INT;
  case 'u':
    return &P_UINT;
  case 'I':
    return &P_I64;
  case 'U':
    return &P_U64;
  case 'f':
    return &P_DBL;
  }
  return &P_STRP; /* #s# */
}

/* The arguments a C array's letter (#X) reads: packing, the items (any
 * pointer), the lengths for #s#, the count; unpacking, the items (a
 * pointer to the element's type), the lengths for #s#, the capacity and
 * the count's target. */
static bool
carray_letter(argcheck *a, int elem) {
  if (!take(a, a->unpack ? carray_target(elem) : &C_ITEMS))
    return false;
  if (elem == T_SHASH && !take(a, a->unpack ? &P_SIZE : &C_ITEMS))
    return false;
  return a->unpack ? take2(a, &V_SIZE, &P_SIZE) : take(a, &V_SIZE);
}

/* The arguments a packing letter reads. */
static bool
pack_letter(argcheck *a, int t) {
  if (bh__tok_is_arr(t))
    return carray_letter(a, bh__tok_elem(t));
  switch (t) {
  case 'b':
  case 'i':
    return take(a, &V_INT);
  case 'u':
    return take(a, &V_UINT);
  case 'I':
    return take(a, &V_I64);
  case 'U':
    return take(a, &V_U64);
  case 'f':
    return take(a, &V_DBL);
  case 's':
    return take(a, &V_STR);
  case T_SHASH:
  case T_YHASH:
    return take2(a, &V_PTR, &V_SIZE);
  case 'o':
    return take(a, &V_OBJ);
  case 'v':
    return take(a, &V_VAL);
  }
  return true; /* n, and containers: no argument */
}

/* The targets an unpacking letter writes. */
static bool
unpack_letter(argcheck *a, int t) {
  if (bh__tok_is_arr(t))
    return carray_letter(a, bh__tok_elem(t));
  switch (t) {
  case 'b':
  case 'i':
    return take(a, &P_INT);
  case 'u':
    return take(a, &P_UINT);
  case 'I':
    return take(a, &P_I64);
  case 'U':
    return take(a, &P_U64);
  case 'f':
    return take(a, &P_DBL);
  case 's':
    return take2(a, &P_BUF, &V_SIZE);
  case T_SHASH:
    return take2(a, &P_STRP, &P_SIZE);
  case T_YHASH:
    return take2(a, &P_BINP, &P_SIZE);
  case 'o':
    return take(a, &P_OBJP);
  }
  return true; /* n, *, and containers: no argument */
}

/* Checks every token; an unpacking map's keys each take the name. The
 * format was validated, so a key is an 's', perhaps followed by '?'. */
static bool
walk(argcheck *a) {
  int t, depth_map[BH__MAX_DEPTH + 2] = {0}, depth = 0;
  bool key[BH__MAX_DEPTH + 2] = {false};
  size_t at;

  while ((t = bh__tok_next(a->fmt, &a->pos, &at)) != T_END) {
    a->letter = t;
    a->at = at;
    if (t == ']' || t == '}') {
      depth--;
      key[depth] = depth_map[depth];
      continue;
    }
    if (a->unpack && depth_map[depth] && key[depth]) {
      if (!take(a, &V_STR))
        return false;
      if (bh__tok_peek(a->fmt, a->pos) == '?')
        bh__tok_next(a->fmt, &a->pos, &at);
      key[depth] = false;
      continue;
    }
    if (t == '[' || t == '{') {
      depth++;
      depth_map[depth] = t == '{';
      key[depth] = t == '{';
      continue;
    }
    if (!(a->unpack ? unpack_letter(a, t) : pack_letter(a, t)))
      return false;
    key[depth] = depth_map[depth];
  }
  return true;
}

static const char *
class_name(char c) {
  switch (c) {
  case 'i':
    return "an int";
  case 'l':
    return "a 64-bit integer";
  case 'd':
    return "a double";
  case 'x':
    return "a long double";
  case 'B':
    return "a bool *";
  case 'c':
    return "a char *";
  case 'h':
    return "a short *";
  case 'n':
    return "an int *";
  case 'm':
    return "an unsigned *";
  case 'q':
    return "an int64_t *";
  case 'Q':
    return "a uint64_t * (size_t *)";
  case 'D':
    return "a double *";
  case 'F':
    return "a float *";
  case 'P':
    return "a pointer to a pointer";
  }
  return "a pointer";
}

static void
token_str(int t, char out[5]) {
  char *p = out;

  if (bh__tok_is_arr(t)) { /* a C array: '#' and its element's token */
    *p++ = '#';
    t = bh__tok_elem(t);
  }
  *p++ = (char)(t > 256 ? t - 256 : t);
  if (t > 256)
    *p++ = '#';
  *p = '\0';
}

/* A mismatch is a bug in the caller, like a failed assertion: it aborts
 * with the caller's file and line. */
static void
mismatch(const argcheck *a, const bh__site *s) {
  char letter[5];

  fflush(stdout);
  fprintf(stderr, "%s:%d: in %s: %s: format \"%s\": ", bh__src_path(s->file),
          s->line, s->func, s->call, a->fmt);
  if (a->bad == NULL) {
    fprintf(stderr, "it reads %zu argument%s, and the call gives %zu\n",
            a->n, a->n == 1 ? "" : "s", strlen(a->types));
  } else {
    token_str(a->letter, letter);
    if (a->types[a->n] == '\0')
      fprintf(stderr, "the call gives %zu argument%s, and '%s' at %zu "
              "reads one more, %s\n", a->n, a->n == 1 ? "" : "s", letter,
              a->at, a->bad->what);
    else
      fprintf(stderr, "argument %zu after the format is %s, but '%s' at "
              "%zu takes %s\n", a->n + 1, class_name(a->types[a->n]), letter,
              a->at, a->bad->what);
  }
  fflush(stderr);
  abort();
}

/* The last formats and classes this thread found to agree: a loop calls
 * with the same few (a task unpacks, delegates and returns, each with its
 * own), and a few compares cost less than a walk. */
#define GOOD_SLOTS 8

typedef struct good {
  char fmt[64], types[32];
  int unpack;
} good;

static _Thread_local good goods[GOOD_SLOTS];
static _Thread_local unsigned good_next;

static bool
known_good(const char *fmt, const char *types, int unpack) {
  unsigned i;

  for (i = 0; i < GOOD_SLOTS && goods[i].fmt[0] != '\0'; i++)
    if (goods[i].unpack == unpack && strcmp(fmt, goods[i].fmt) == 0 &&
        strcmp(types, goods[i].types) == 0)
      return true;
  return false;
}

static void
remember(const char *fmt, const char *types, int unpack) {
  size_t nf = strlen(fmt), nt = strlen(types);
  good *g;

  if (nf >= sizeof(g->fmt) || nt >= sizeof(g->types))
    return;
  g = &goods[good_next++ % GOOD_SLOTS];
  memcpy(g->fmt, fmt, nf + 1);
  memcpy(g->types, types, nt + 1);
  g->unpack = unpack;
}

const char *
bh__call_at(const char *fmt, const char *types, int unpack,
            const char *call, const char *file, int line, const char *func) {
  argcheck a = {fmt, 0, types, 0, unpack != 0, 0, 0, NULL};
  size_t count;

  last = (bh__site){call, file, func, line};
  if (types == NULL || fmt == NULL || known_good(fmt, types, unpack) ||
      bh__check_format(fmt, unpack != 0, NULL, 0, &count) != 0)
    return fmt; /* a bad format: the call itself reports it */
  if (!walk(&a) || a.types[a.n] != '\0')
    mismatch(&a, &last);
  remember(fmt, types, unpack);
  return fmt;
}
