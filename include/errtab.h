/* errtab.h: the one lookup over a {name, text} message table indexed by a code; header-only and pure (no globals, no I/O), so every library (block/, fs/, vhd/, vhdx/) may use it. */
#ifndef ERRTAB_H
#define ERRTAB_H

/* One entry of a message table: a short stable name ("bad-arg") and a sentence for people. A table is an
 * array indexed by code with designated initializers; codes without an entry are { NULL, NULL }. */
struct errtab_msg {
	const char *name;
	const char *text;
};

/* Code as a table index for libraries whose callers may pass the error negated (-VHD_E_IO): its magnitude,
 * computed in unsigned so INT_MIN cannot overflow (it lands out of range). */
static inline unsigned errtab_abs(int code)
{
	return code < 0 ? 0u - (unsigned)code : (unsigned)code;
}

/* tab[code].text, or dflt when code (a negative int converts to a huge one) is outside tab[0..count) or has
 * no entry. */
static inline const char *errtab_text(const struct errtab_msg *tab, unsigned count, unsigned code, const char *dflt)
{
	return code < count && tab[code].text ? tab[code].text : dflt;
}

/* tab[code].name, or dflt on the same terms as errtab_text. */
static inline const char *errtab_name(const struct errtab_msg *tab, unsigned count, unsigned code, const char *dflt)
{
	return code < count && tab[code].name ? tab[code].name : dflt;
}

#endif
