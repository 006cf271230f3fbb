/* vtout.c: one emitter for text ("key: value") and JSON output of vhdtool commands. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "vhdtool.h"

/* ------------------------------------------------------------------ text / JSON output */


/* XML/HTML escaping; see vhdtool.h. */
void out_xml(FILE *f, const char *s)
{
	for (; *s; s++)
		fputs(*s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '&' ? "&amp;" : *s == '"' ? "&quot;" : (char[2]){ *s, 0 }, f);
}

/* map_html_begin; see vhdtool.h. */
void map_html_begin(FILE *f, const char *path)
{
	fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>vhdtool map: ");
	out_xml(f, path);
	fprintf(f, "</title></head>\n<body>\n<h1>");
	out_xml(f, path);
	fprintf(f, "</h1>\n");
}

/* map_html_table; see vhdtool.h. */
void map_html_table(FILE *f, const char *unit)
{
	fprintf(f, "<table border=\"1\" cellspacing=\"0\" cellpadding=\"3\">\n<tr><th>%s</th><th>kind</th>"
	        "<th>what</th></tr>\n", unit);
}

/* map_html_row; see vhdtool.h. */
void map_html_row(FILE *f, const char *kind, unsigned long long s, unsigned long long e, const char *what)
{
	fprintf(f, "<tr data-kind=\"%s\"><td>%llu-%llu</td><td>%s</td><td>", kind, s, e, kind);
	out_xml(f, what);
	fprintf(f, "</td></tr>\n");
}

/* map_html_end; see vhdtool.h. */
void map_html_end(FILE *f)
{
	fprintf(f, "</table>\n</body></html>\n");
}

/* Write s as a JSON string literal (invalid UTF-8 bytes become U+FFFD). */
void out_json_string(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	putchar('"');
	while (*p) {
		unsigned c = *p;
		if (c == '"' || c == '\\') {
			printf("\\%c", c);
			p++;
		} else if (c < 0x20 || c == 0x7f) {
			printf("\\u%04x", c);
			p++;
		} else if (c < 0x80) {
			putchar((int)c);
			p++;
		} else {
			int len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
			int ok = len > 0 && c >= 0xc2 && c <= 0xf4;
			for (int i = 1; ok && i < len; i++)
				ok = (p[i] & 0xc0) == 0x80;
			if (ok) {
				fwrite(p, 1, (size_t)len, stdout);
				p += len;
			} else {
				printf("\\ufffd");
				p++;
			}
		}
	}
	putchar('"');
}

/* Start an item: JSON comma/indent/key, or the text indent and "key:" label. */
void out_key(struct out *o, const char *key)
{
	int d = o->depth;

	if (o->json) {
		printf("%s\n%*s", o->count[d] ? "," : "", 2 * d, "");
		if (key && !o->is_array[d]) {
			out_json_string(key);
			printf(": ");
		}
	} else if (key) {
		char label[64];
		size_t i;
		for (i = 0; key[i] && i + 2 < sizeof(label); i++)
			label[i] = key[i] == '_' ? ' ' : key[i];
		label[i++] = ':';
		label[i] = 0;
		printf("%*s%-*s ", 2 * d, "", 30 - 2 * d, label);
	}
	o->count[d]++;
}

/* A string value. */
void out_str(struct out *o, const char *key, const char *v)
{
	out_key(o, key);
	if (o->json)
		out_json_string(v);
	else
		printf("%s\n", v);
}

/* An unsigned number. */
void out_u64(struct out *o, const char *key, uint64_t v)
{
	out_key(o, key);
	printf(o->json ? "%llu" : "%llu\n", (unsigned long long)v);
}

/* An unsigned number shown in hex in text mode (a plain number in JSON). */
void out_hex(struct out *o, const char *key, uint64_t v, int width)
{
	out_key(o, key);
	if (o->json)
		printf("%llu", (unsigned long long)v);
	else
		printf("0x%0*llx\n", width, (unsigned long long)v);
}

/* A boolean. */
void out_bool(struct out *o, const char *key, int v)
{
	out_key(o, key);
	printf(o->json ? "%s" : "%s\n", v ? (o->json ? "true" : "yes") : (o->json ? "false" : "no"));
}

/* A JSON null ("none" in text). */
void out_null(struct out *o, const char *key)
{
	out_key(o, key);
	printf(o->json ? "null" : "none\n");
}

/* Open a nested object (or array, when array is set) under key. */
void out_begin(struct out *o, const char *key, int array)
{
	int d = o->depth;

	if (o->json) {
		out_key(o, key);
		putchar(array ? '[' : '{');
	} else {
		if (o->is_array[d])
			printf("%*s[%d]\n", 2 * d, "", o->count[d]);
		else if (key)
			printf("%*s%s:\n", 2 * d, "", key);
		o->count[d]++;
	}
	o->depth++;
	o->count[o->depth] = 0;
	o->is_array[o->depth] = array;
}

/* Close the innermost object or array. */
void out_end(struct out *o)
{
	int d = o->depth--;

	if (o->json)
		printf("\n%*s%c", 2 * o->depth, "", o->is_array[d] ? ']' : '}');
}

