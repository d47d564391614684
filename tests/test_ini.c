/* test_ini.c - the INI dialect of AWS's shared files (src/io/ini.c): what
 * botocore's configparser-based reader accepts, means and rejects. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/ini.h"
#include "base/base.h"
#include "runner.h"
#include "workdir.h"

static char err[512];

/* Parses text (NUL-terminated) as file "f"; NULL on failure. */
static bh__ini *
parse(const char *text) {
  bh__ini *ini;

  err[0] = '\0';
  if (bh__ini_parse(&ini, "f", text, strlen(text), err, sizeof(err)) != 0)
    return NULL;
  return ini;
}

/* The plain value of [sect] key, or NULL. */
static const char *
val(const bh__ini *ini, const char *sect, const char *key) {
  const bh__ini_opt *o = bh__ini_get(ini, bh__ini_find(ini, sect), key, NULL);

  return o != NULL ? o->value : NULL;
}

/* Whether text fails to parse with exactly message `want`. */
static int
rejects(const char *text, const char *want) {
  bh__ini *ini = parse(text);

  if (ini != NULL) {
    bh__ini_free(ini);
    fprintf(stderr, "accepted: %s\n", text);
    return 0;
  }
  if (strcmp(err, want) != 0) {
    fprintf(stderr, "message \"%s\", wanted \"%s\"\n", err, want);
    return 0;
  }
  return 1;
}

TEST(keys_and_values) {
  size_t live0 = bh__alloc_live();
  bh__ini *ini = parse("[a]\n"
                       "  k2   =   v 2  \n"
                       "k1=v1\n"
                       "k3: v3=x:y\n"
                       "K4 = upper key\n"
                       "k5 = value # not a comment\n"
                       "k6 =\n"
                       "# a comment\n"
                       "; another\n"
                       "\t# indented comment\n"
                       "\n"
                       "[b]\n"
                       "k1 = b1\n");

  ASSERT(ini != NULL);
  ASSERT_INT_EQ(ini->nsects, 2);
  ASSERT_STR_EQ(ini->sects[0]->name, "a");
  ASSERT_INT_EQ(ini->sects[0]->line, 1);
  ASSERT_STR_EQ(val(ini, "a", "k1"), "v1");
  ASSERT_STR_EQ(val(ini, "a", "k2"), "v 2");
  ASSERT_STR_EQ(val(ini, "a", "k3"), "v3=x:y");
  ASSERT_STR_EQ(val(ini, "a", "k4"), "upper key");
  ASSERT(val(ini, "a", "K4") == NULL);
  /* configparser has no inline comments by default: botocore neither. */
  ASSERT_STR_EQ(val(ini, "a", "k5"), "value # not a comment");
  ASSERT_STR_EQ(val(ini, "a", "k6"), "");
  ASSERT_STR_EQ(val(ini, "b", "k1"), "b1");
  ASSERT(val(ini, "c", "k1") == NULL);
  ASSERT(bh__ini_find(ini, "A") == NULL);
  bh__ini_free(ini);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

TEST(section_names) {
  bh__ini *ini = parse("[a] trailing text\n"
                       "[x]y]\n"
                       "[ spaced name ]\n"
                       "  [indented]\n"
                       "[profile my name]\n");

  ASSERT(ini != NULL);
  ASSERT_INT_EQ(ini->nsects, 5);
  /* The name runs to the last ']' and is not trimmed. */
  ASSERT_STR_EQ(ini->sects[0]->name, "a");
  ASSERT_STR_EQ(ini->sects[1]->name, "x]y");
  ASSERT_STR_EQ(ini->sects[2]->name, " spaced name ");
  ASSERT_STR_EQ(ini->sects[3]->name, "indented");
  ASSERT_STR_EQ(ini->sects[4]->name, "profile my name");
  bh__ini_free(ini);
  return 0;
}

TEST(line_endings) {
  bh__ini *ini = parse("\xEF\xBB\xBF[crlf]\r\nk = v\r\n\r\n[cr]\rk = w\r"
                       "s3 =\r  addressing_style = path\r[lf]\nk = x");

  ASSERT(ini != NULL);
  ASSERT_STR_EQ(val(ini, "crlf", "k"), "v");
  ASSERT_STR_EQ(val(ini, "cr", "k"), "w");
  ASSERT_STR_EQ(
      bh__ini_sub(bh__ini_get(ini, bh__ini_find(ini, "cr"), "s3", NULL),
                  "addressing_style"),
      "path");
  ASSERT_STR_EQ(val(ini, "lf", "k"), "x");
  ASSERT_INT_EQ(bh__ini_find(ini, "lf")->line, 8);
  bh__ini_free(ini);
  return 0;
}

TEST(continuation_lines) {
  bh__ini *ini = parse("[a]\n"
                       "tok = abc\n"
                       "   def\n"
                       "\n"
                       "   ghi\n"
                       "\n"
                       "\n"
                       "next = 1\n"
                       "  still next\n"
                       "[b]\n"
                       "  k = v\n"
                       "  k2 = v2\n");

  ASSERT(ini != NULL);
  /* Empty lines stay inside a value; trailing ones go. */
  ASSERT_STR_EQ(val(ini, "a", "tok"), "abc\ndef\n\nghi");
  ASSERT_STR_EQ(val(ini, "a", "next"), "1\nstill next");
  /* As indented as the option before: a new option, not a continuation. */
  ASSERT_STR_EQ(val(ini, "b", "k"), "v");
  ASSERT_STR_EQ(val(ini, "b", "k2"), "v2");
  ASSERT_INT_EQ(bh__ini_get(ini, bh__ini_find(ini, "b"), "k", NULL)->nsub, 0);
  bh__ini_free(ini);
  return 0;
}

TEST(nested_blocks) {
  bh__ini *ini = parse("[a]\n"
                       "s3 =\n"
                       "\n"
                       "  addressing_style = path\n"
                       "  # a comment inside\n"
                       "  endpoint_url=http://127.0.0.1:9000 # kept\n"
                       "  Mixed_Case = yes\n"
                       "  addressing_style = virtual\n"
                       "region = r\n"
                       "empty =\n"
                       "\n");
  const bh__ini_opt *o;

  ASSERT(ini != NULL);
  o = bh__ini_get(ini, bh__ini_find(ini, "a"), "s3", NULL);
  ASSERT(o != NULL);
  ASSERT_INT_EQ(o->nsub, 4);
  /* The last line naming a key wins, as in botocore's dict. */
  ASSERT_STR_EQ(bh__ini_sub(o, "addressing_style"), "virtual");
  ASSERT_STR_EQ(bh__ini_sub(o, "endpoint_url"), "http://127.0.0.1:9000 # kept");
  /* Nested keys keep their case (botocore does not lower them). */
  ASSERT_STR_EQ(bh__ini_sub(o, "Mixed_Case"), "yes");
  ASSERT(bh__ini_sub(o, "mixed_case") == NULL);
  ASSERT_STR_EQ(val(ini, "a", "region"), "r");
  o = bh__ini_get(ini, bh__ini_find(ini, "a"), "empty", NULL);
  ASSERT(o != NULL && o->nsub == 0 && strcmp(o->value, "") == 0);
  ASSERT(bh__ini_sub(o, "x") == NULL);
  ASSERT(bh__ini_sub(NULL, "x") == NULL);
  bh__ini_free(ini);
  return 0;
}

TEST(default_section) {
  bh__ini *ini = parse("[DEFAULT]\n"
                       "region = from-default\n"
                       "k = d\n"
                       "[a]\n"
                       "k = own\n"
                       "[DEFAULT]\n"
                       "more = m\n");
  const bh__ini_sect *from;
  const bh__ini_opt *o;

  ASSERT(ini != NULL);
  ASSERT_INT_EQ(ini->nsects, 1);
  ASSERT(bh__ini_find(ini, "DEFAULT") == NULL);
  ASSERT_STR_EQ(val(ini, "a", "k"), "own");
  o = bh__ini_get(ini, bh__ini_find(ini, "a"), "region", &from);
  ASSERT(o != NULL && from == &ini->defaults);
  ASSERT_STR_EQ(o->value, "from-default");
  ASSERT_STR_EQ(val(ini, "a", "more"), "m");
  /* No section, no inheritance. */
  ASSERT(bh__ini_get(ini, NULL, "region", &from) == NULL && from == NULL);
  bh__ini_free(ini);
  return 0;
}

TEST(long_lines) {
  size_t live0 = bh__alloc_live();
  size_t n = 100000;
  char *text = malloc(n + 64), *p;
  bh__ini *ini;

  ASSERT(text != NULL);
  p = text + sprintf(text, "[a]\r\naws_session_token = ");
  for (size_t i = 0; i < n; i++)
    *p++ =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i %
                                                                           64];
  strcpy(p, "\r\nnext = 1\r\n");
  ini = parse(text);
  ASSERT(ini != NULL);
  ASSERT_INT_EQ(strlen(val(ini, "a", "aws_session_token")), n);
  ASSERT(memcmp(val(ini, "a", "aws_session_token"),
                text + strlen("[a]\r\naws_session_token = "), n) == 0);
  ASSERT_STR_EQ(val(ini, "a", "next"), "1");
  bh__ini_free(ini);
  free(text);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* Everything configparser (and so botocore) rejects, with file:line. */
TEST(syntax_errors) {
  size_t live0 = bh__alloc_live();

  ASSERT(rejects("k = v\n", "f:1: expected a [section] first"));
  ASSERT(rejects("\n# c\n[]=x\n", "f:3: expected a [section] first"));
  ASSERT(rejects("[a]\nk = v\njust words\n",
                 "f:3: expected \"key = value\" or a [section]"));
  ASSERT(rejects("[a]\n[]\n", "f:2: expected \"key = value\" or a [section]"));
  ASSERT(rejects("[a]\n = v\n", "f:2: no key before '='"));
  ASSERT(rejects("[a]\n: v\n", "f:2: no key before ':'"));
  ASSERT(rejects("[a]\n[b]\n[a]\n", "f:3: section [a] appears twice"));
  ASSERT(rejects("[a]\nKey = 1\nkey = 2\n",
                 "f:3: key \"key\" appears twice in [a]"));
  ASSERT(rejects("[DEFAULT]\nk = 1\n[DEFAULT]\nk = 2\n",
                 "f:4: key \"k\" appears twice in [DEFAULT]"));
  ASSERT(rejects("[a]\ns3 =\n  addressing_style = path\n  bogus\n",
                 "f:4: expected \"key = value\" in the block of \"s3\""));
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* A NUL byte (strlen would stop at it: give the length). */
TEST(nul_byte) {
  static const char text[] = "[a]\nk = v\0w\n";
  bh__ini *ini;

  ASSERT_INT_EQ(
      bh__ini_parse(&ini, "f", text, sizeof(text) - 1, err, sizeof(err)),
      BH_EINVAL);
  ASSERT(ini == NULL);
  ASSERT_STR_EQ(err, "f:2: NUL byte");
  return 0;
}

/* ---- files --------------------------------------------------------------- */

static char dir[256];

static int
make_dir(void) {
  const char *tmp = getenv("TMPDIR");

  snprintf(dir, sizeof(dir), "%s/bh_test_ini_XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  return mkdtemp(dir) != NULL ? 0 : -1;
}

static int
write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");

  if (f == NULL)
    return -1;
  fputs(text, f);
  return fclose(f);
}

TEST(read_files) {
  size_t live0 = bh__alloc_live();
  char path[512];
  bh__ini *ini;

  ASSERT(make_dir() == 0);
  snprintf(path, sizeof(path), "%s/missing", dir);
  ASSERT_INT_EQ(bh__ini_read(&ini, path, err, sizeof(err)), 0);
  ASSERT(ini == NULL);
  /* Under a regular file: ENOTDIR, missing as well. */
  snprintf(path, sizeof(path), "%s/f", dir);
  ASSERT(write_file(path, "[a]\nk = v\n") == 0);
  ASSERT_INT_EQ(bh__ini_read(&ini, path, err, sizeof(err)), 0);
  ASSERT(ini != NULL);
  ASSERT_STR_EQ(ini->path, path);
  ASSERT_STR_EQ(val(ini, "a", "k"), "v");
  bh__ini_free(ini);
  snprintf(path, sizeof(path), "%s/f/below", dir);
  ASSERT_INT_EQ(bh__ini_read(&ini, path, err, sizeof(err)), 0);
  ASSERT(ini == NULL);
  /* A directory where a file should be: an error, naming the path. */
  ASSERT_INT_EQ(bh__ini_read(&ini, dir, err, sizeof(err)), -EISDIR);
  ASSERT(ini == NULL);
  ASSERT(strncmp(err, dir, strlen(dir)) == 0);
  /* Syntax errors name the file. */
  snprintf(path, sizeof(path), "%s/bad", dir);
  ASSERT(write_file(path, "[a]\nnonsense\n") == 0);
  ASSERT_INT_EQ(bh__ini_read(&ini, path, err, sizeof(err)), BH_EINVAL);
  ASSERT(strstr(err, "/bad:2: expected") != NULL);
  ASSERT(rm_tree(dir) == 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* A file that exists but may not be read is an error (botocore would
 * skip it silently and sign nothing). As root, the case drops to nobody
 * first, since root reads anything. */
TEST(unreadable_file) {
  bool root = geteuid() == 0;
  char path[512];
  bh__ini *ini;

  ASSERT(make_dir() == 0);
  ASSERT(chmod(dir, 0755) == 0);
  snprintf(path, sizeof(path), "%s/secret", dir);
  ASSERT(write_file(path, "[a]\nk = v\n") == 0);
  ASSERT(chmod(path, 0) == 0);
  if (root)
    ASSERT(setresuid(65534, 65534, 0) == 0);
  ASSERT_INT_EQ(bh__ini_read(&ini, path, err, sizeof(err)), -EACCES);
  ASSERT(ini == NULL);
  ASSERT(strstr(err, "/secret: ") != NULL);
  if (root)
    ASSERT(setresuid(0, 0, 0) == 0);
  ASSERT(rm_tree(dir) == 0);
  return 0;
}

TEST_MAIN(TEST_ENTRY(keys_and_values), TEST_ENTRY(section_names),
          TEST_ENTRY(line_endings), TEST_ENTRY(continuation_lines),
          TEST_ENTRY(nested_blocks), TEST_ENTRY(default_section),
          TEST_ENTRY(long_lines), TEST_ENTRY(syntax_errors),
          TEST_ENTRY(nul_byte), TEST_ENTRY(read_files),
          TEST_ENTRY(unreadable_file))
