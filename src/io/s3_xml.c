/* s3_xml.c - the XML documents S3 answers with: errors and
 * ListObjectsV2 results, read with expat. Only the leaf elements the
 * client needs are kept; everything else is skipped. */
#include "io/s3.h"

#include <expat.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 8

typedef struct doc {
  char names[MAX_DEPTH][32];    /* the open elements, from the root */
  int depth;
  bh__buf text;                /* the current element's text */
  bh__s3_err *err;             /* an error document, or */
  bh_s3_listing *list;            /* a listing */
  bool failed;
} doc;

static bool
at(const doc *d, const char *parent, const char *leaf) {
  return d->depth >= 2 && d->depth <= MAX_DEPTH &&
         strcmp(d->names[d->depth - 2], parent) == 0 &&
         strcmp(d->names[d->depth - 1], leaf) == 0;
}

static void XMLCALL
on_start(void *ud, const XML_Char *name, const XML_Char **attrs) {
  doc *d = ud;

  (void)attrs;
  if (d->depth < MAX_DEPTH)
    snprintf(d->names[d->depth], sizeof(d->names[0]), "%s", name);
  d->depth++;
  d->text.len = 0;
}

static void XMLCALL
on_text(void *ud, const XML_Char *s, int len) {
  doc *d = ud;

  if (bh__buf_append(&d->text, s, (size_t)len) != 0)
    d->failed = true;
}

static char *
text(doc *d) {
  char *s = bh__strndup(d->text.data ? d->text.data : "", d->text.len);

  if (s == NULL)
    d->failed = true;
  return s;
}

static void
set(doc *d, char **field) {
  bh__free(*field);
  *field = text(d);
}

/* A new <Contents> entry in the listing. */
static bh__s3_entry *
entry_new(doc *d) {
  bh_s3_listing *l = d->list;

  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    bh__s3_entry *v = bh__realloc(l->v, cap * sizeof(*v));

    if (v == NULL) {
      d->failed = true;
      return NULL;
    }
    l->v = v;
    l->cap = cap;
  }
  memset(&l->v[l->n], 0, sizeof(l->v[0]));
  return &l->v[l->n++];
}

static void
list_leaf(doc *d) {
  bh_s3_listing *l = d->list;
  bh__s3_entry *e = l->n > 0 ? &l->v[l->n - 1] : NULL;

  if (at(d, "Contents", "Key") && (e = entry_new(d)) != NULL)
    e->key = text(d);
  else if (e != NULL && at(d, "Contents", "Size"))
    e->size = strtoll(d->text.data ? d->text.data : "0", NULL, 10);
  else if (e != NULL && at(d, "Contents", "ETag"))
    set(d, &e->etag);
  else if (e != NULL && at(d, "Contents", "LastModified"))
    set(d, &e->modified);
  else if (at(d, "ListBucketResult", "NextContinuationToken"))
    set(d, &l->next);
  else if (at(d, "ListBucketResult", "IsTruncated"))
    l->truncated = d->text.len == 4 && memcmp(d->text.data, "true", 4) == 0;
}

static void XMLCALL
on_end(void *ud, const XML_Char *name) {
  doc *d = ud;

  (void)name;
  bh__buf_append(&d->text, "", 1);
  d->text.len--;
  if (d->err != NULL && at(d, "Error", "Code"))
    set(d, &d->err->code);
  else if (d->err != NULL && at(d, "Error", "Message"))
    set(d, &d->err->message);
  else if (d->list != NULL)
    list_leaf(d);
  d->depth--;
  d->text.len = 0;
}

static int
parse(doc *d, const char *xml, size_t len) {
  XML_Parser p = XML_ParserCreate("UTF-8");
  int ok;

  if (p == NULL)
    return BH_ENOMEM;
  XML_SetUserData(p, d);
  XML_SetElementHandler(p, on_start, on_end);
  XML_SetCharacterDataHandler(p, on_text);
  ok = len <= INT32_MAX &&
       XML_Parse(p, xml, (int)len, 1) == XML_STATUS_OK;
  XML_ParserFree(p);
  bh__buf_free(&d->text);
  if (d->failed)
    return BH_ENOMEM;
  return ok ? 0 : BH_EPROTO;
}

int
bh__s3_xml_error(const char *xml, size_t len, bh__s3_err *e) {
  doc d = {.err = e};

  memset(e, 0, sizeof(*e));
  return parse(&d, xml, len);
}

void
bh__s3_err_clear(bh__s3_err *e) {
  bh__free(e->code);
  bh__free(e->message);
  memset(e, 0, sizeof(*e));
}

int
bh__s3_xml_list(const char *xml, size_t len, bh_s3_listing *l) {
  doc d = {.list = l};
  int rc = parse(&d, xml, len);

  if (rc == 0 && !l->truncated) {
    bh__free(l->next);
    l->next = NULL;
  }
  return rc;
}
