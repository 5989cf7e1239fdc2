/*
 * zige native ingest: the evidence store's fast path for feed CSV files (issue 6, item 2).
 *
 * Plain C with no Python headers, loaded with ctypes (which releases the GIL during the call, so
 * two threads scan the two halves of a file at once). Its entry points:
 *
 *   zige_count_lines      line feeds in a byte range (to size the output arrays: sampled, or all
 *                         when a range had more lines than the estimate);
 *   zige_scan             split lines into fields and normalise the rows it is *sure* of;
 *   zige_utf8_valid       the scan's UTF-8 check of a buffer (for the tests);
 *   zige_order_rows       the rows in the store's order without exact duplicates, by buckets
 *                         small enough for the cache (no random reads over the whole data).
 *
 * The scan is a fast path, not a second definition of the rules. A row is "fast" only when every
 * value is one the SQL normalisation (zige.engine.sql.stage_feed_keyed_sql) would accept, and then
 * the values written are the ones that SQL gives: the ID's store key (GB 11643 check character
 * and birth date verified, 15-digit numbers upgraded), the event date, the name without spaces and
 * the detail text. Two rejects it gives itself, the commonest, each the SQL path's first failing
 * check of its row: a plain ID with a wrong check character and an empty ID on a dated row (the
 * reject's row, reason code and ID cell). Every other row (a quote, a control character, an ID or
 * date this code does not recognise, a missing value ...) is copied verbatim, prefixed by its line
 * number, into a side buffer that the caller runs through the SQL path, which gives the reject
 * reason. tests/unit/test_native_ingest.py holds the two paths to identical stores and rejects.
 *
 * A file the SQL fast path would refuse (an empty line, a row of the wrong width, a quoted value
 * spanning lines, invalid UTF-8) makes the scan stop with status ABORT; the caller then uses the
 * SQL path for the whole file, which refuses it the same way as before. So does a carriage return
 * left in a line (one not part of its CRLF): the readers and a spreadsheet end a row at a lone CR,
 * and this scan counts line feeds only, so it would merge two rows (or number the rest wrongly).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ZIGE_OK 0
#define ZIGE_ABORT 1
#define ZIGE_FULL 2

#define MAX_WIDTH 256
#define MAX_OTHERS 32

typedef struct {
    /* input */
    const uint8_t *buf;
    int64_t begin, end;          /* [begin, end): whole lines; the last may lack its line feed */
    int32_t width;               /* fields per row */
    int32_t delim;
    int32_t id_col, name_col, date_col; /* physical field indices, -1 when absent */
    int32_t n_other;
    const int32_t *other_cols;   /* n_other physical indices (-1: absent) */
    const uint8_t *other_required;
    int32_t birth_low, birth_high; /* YYYYMMDD bounds of a valid birth date */
    /* output: row i of the range goes to index i of these (the caller offsets the pointers) */
    int64_t max_rows;
    int64_t row_base;            /* the spreadsheet row number of the range's first line */
    int64_t *id_key;
    int32_t *day;                /* days since 1970-01-01 */
    int32_t *month;              /* months since 1970-01 */
    uint64_t *sort_key;          /* id_key << 5 | (day of month - 1) */
    int64_t *row_no;
    int64_t *name_start;         /* a fast row's name key: name_data[name_start[i]..name_end[i]) */
    int64_t *name_end;
    uint8_t *name_data;          /* the whole buffer; this range writes from name_pos on */
    int64_t name_pos, name_limit;
    int64_t *detail_start;
    int64_t *detail_end;
    uint8_t *detail_data;
    int64_t detail_pos, detail_limit;
    uint8_t *slow_data;          /* "<line index><delim><line>\n" per slow row */
    int64_t slow_cap;
    /* rejects this code is sure of (NULL: none, every such row is slow): row i of them is
     * spreadsheet row reject_row[i], reason reject_code[i] (REJECT_*), its ID cell's value
     * reject_data[reject_end[i - 1] .. reject_end[i]) (from 0 for the first) */
    int64_t *reject_row;
    uint8_t *reject_code;
    int64_t *reject_end;
    uint8_t *reject_data;
    int64_t reject_cap;
    /* results */
    int64_t n_fast, n_lines, n_slow, slow_bytes, abort_line, n_reject;
    int32_t status;
    int32_t abort_reason;        /* 1 empty line, 2 width, 3 quote, 4 UTF-8, 5 capacity, 6 lone CR */
    int32_t byte_loop;           /* input: 1 splits every line in the byte loop (the tests' reference) */
} zige_scan_args;

/* The reject reasons the scan gives itself (zige.engine.native.REJECT_REASONS). */
#define REJECT_MISSING_ID 1
#define REJECT_BAD_CHECKSUM 2

static const int WEIGHTS[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
static const char CHECK_CHARS[12] = "10X98765432";

int64_t zige_count_lines(const uint8_t *buf, int64_t begin, int64_t end) {
    int64_t n = 0;
    const uint8_t *p = buf + begin, *e = buf + end;
    while (p < e) {
        const uint8_t *q = memchr(p, '\n', (size_t)(e - p));
        if (!q) break;
        n++;
        p = q + 1;
    }
    return n;
}

/* Length of the Unicode space separator (Zs) starting at p, or 0: what DuckDB's trim() removes. */
static int zs_at(const uint8_t *p, const uint8_t *e) {
    if (p >= e) return 0;
    if (p[0] == ' ') return 1;
    if (e - p >= 2 && p[0] == 0xC2 && p[1] == 0xA0) return 2;
    if (e - p >= 3) {
        if (p[0] == 0xE1 && p[1] == 0x9A && p[2] == 0x80) return 3;                  /* U+1680 */
        if (p[0] == 0xE2 && p[1] == 0x80 && ((p[2] >= 0x80 && p[2] <= 0x8A) || p[2] == 0xAF))
            return 3;                                                                 /* U+2000-200A, 202F */
        if (p[0] == 0xE2 && p[1] == 0x81 && p[2] == 0x9F) return 3;                  /* U+205F */
        if (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80) return 3;                  /* U+3000 */
    }
    return 0;
}

/* Length of the Zs character ending at e (exclusive), or 0. */
static int zs_before(const uint8_t *s, const uint8_t *e) {
    if (e - s >= 1 && e[-1] == ' ') return 1;
    if (e - s >= 2 && zs_at(e - 2, e) == 2) return 2;
    if (e - s >= 3 && zs_at(e - 3, e) == 3) return 3;
    return 0;
}

static __attribute__((noinline)) void trim_ends(const uint8_t **s, const uint8_t **e) {
    int k;
    while ((k = zs_at(*s, *e)) > 0) *s += k;
    while (*e > *s && (k = zs_before(*s, *e)) > 0) *e -= k;
}

/* A byte that can begin a Zs character (zs_at), or end one (zs_before): ' ' and the lead
 * bytes C2 E1 E2 E3; ' ' and the last bytes A0, 80-8A, 9F, AF. */
static inline int may_begin_zs(uint8_t b) { return b == ' ' || b == 0xC2 || (b >= 0xE1 && b <= 0xE3); }
static inline int may_end_zs(uint8_t b) {
    return b == ' ' || b == 0xA0 || (b >= 0x80 && b <= 0x8A) || b == 0x9F || b == 0xAF;
}

/* trim(): strip Zs characters at both ends. Inline for the common field, whose first and last
 * bytes can be no part of one (an ID, a date, a train number; a CJK name ends in a byte that
 * may be, and takes the full test). It was a call for each of a row's six trimmed fields. */
static inline void trim(const uint8_t **s, const uint8_t **e) {
    if (*s < *e && !may_begin_zs(**s) && !may_end_zs((*e)[-1])) return;
    trim_ends(s, e);
}

/* The length of the valid UTF-8 character at p (not ASCII: no overlongs, no surrogates, at most
 * U+10FFFF, as DuckDB requires), or 0. */
static int utf8_char(const uint8_t *p, const uint8_t *e) {
    const uint8_t c = *p;
    if (c >= 0xC2 && c <= 0xDF) {
        return e - p >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (e - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0;
        if (c == 0xED && p[1] >= 0xA0) return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (e - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0;
        if (c == 0xF4 && p[1] >= 0x90) return 0;
        return 4;
    }
    return 0;
}

static int leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int valid_ymd(int y, int m, int d) {
    static const int days[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1) return 0;
    int last = days[m] + (m == 2 && leap(y));
    return d <= last;
}

/* Days from 1970-01-01 (proleptic Gregorian). */
static int32_t days_from_civil(int y, int m, int d) {
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const int yoe = y - era * 400;
    const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int32_t)(era * 146097 + doe - 719468);
}

/*
 * The ID's store key, as zige.engine.sql.fast_id_sql / clean_id_sql / id18_sql / id_reason_sql
 * give it for a usable ID; 0 when this code is not sure (the SQL path decides).
 * Cleaning: full-width digits and x/X to ASCII, x upper-cased, and removed: ASCII space,
 * U+3000, U+00A0, apostrophes ' ‘ ’ and the backtick (Excel's text marker).
 */
static int64_t id_key_of_clean(const char *id, int checked, int birth_low, int birth_high);

static int64_t id_key_of(const uint8_t *p, const uint8_t *e, int birth_low, int birth_high) {
    char c[19];
    int n = 0;
    /* The plain ID (17 ASCII digits and a digit, X or x: most rows) read where it lies. The loop
     * below cleaned it byte by byte into `c` and then copied it whole, and that wide load of the
     * bytes just stored one at a time stalled on every row (docs/performance.md). */
    if (e - p == 18) {
        unsigned bad = 0;
        for (int i = 0; i < 17; i++) bad |= (unsigned)(p[i] - '0') > 9;
        const uint8_t last = p[17];
        if (!bad && ((unsigned)(last - '0') <= 9 || last == 'X' || last == 'x')) {
            char id[18];
            memcpy(id, p, 17);
            id[17] = last == 'x' ? 'X' : (char)last;
            return id_key_of_clean(id, 1, birth_low, birth_high);
        }
    }
    while (p < e) {
        uint8_t b = *p;
        char out = 0;
        int step = 1;
        if (b >= '0' && b <= '9') out = (char)b;
        else if (b == 'X' || b == 'x') out = 'X';
        else if (b == ' ' || b == '\'' || b == '`') out = 0;
        else if (b == 0xC2 && e - p >= 2 && p[1] == 0xA0) step = 2;
        else if (b == 0xE3 && e - p >= 3 && p[1] == 0x80 && p[2] == 0x80) step = 3;
        else if (b == 0xE2 && e - p >= 3 && p[1] == 0x80 && (p[2] == 0x98 || p[2] == 0x99)) step = 3;
        else if (b == 0xEF && e - p >= 3 && p[1] == 0xBC && p[2] >= 0x90 && p[2] <= 0x99) {
            out = (char)('0' + (p[2] - 0x90));
            step = 3;
        } else if (b == 0xEF && e - p >= 3 && ((p[1] == 0xBD && p[2] == 0x98) || (p[1] == 0xBC && p[2] == 0xB8))) {
            out = 'X';
            step = 3;
        } else return 0;
        if (out) {
            if (n >= 18) return 0;
            c[n++] = out;
        }
        p += step;
    }
    char id[18];
    if (n == 18) {
        for (int i = 0; i < 17; i++) if (c[i] == 'X') return 0;
        memcpy(id, c, 18);
    } else if (n == 15) {
        for (int i = 0; i < 15; i++) if (c[i] == 'X') return 0;
        memcpy(id, c, 6);
        id[6] = '1';
        id[7] = '9';
        memcpy(id + 8, c + 6, 9);
    } else {
        return 0;
    }
    return id_key_of_clean(id, n == 18, birth_low, birth_high);
}

/* The store key of a cleaned 18-character ID (`checked`: its check character is compared; a
 * 15-digit number upgraded has none), or 0. */
static int64_t id_key_of_clean(const char *id, int checked, int birth_low, int birth_high) {
    /* The store key: digits 7-17 (birth date, sequence), then the region (zige.ids.store_key). */
    int sum = 0;
    int64_t key = 0;
    int64_t region = 0;
    for (int i = 0; i < 17; i++) {
        int digit = id[i] - '0';
        sum += digit * WEIGHTS[i];
        if (i < 6) region = region * 10 + digit;
        else key = key * 10 + digit;
    }
    key = key * 1000000 + region;
    char check = CHECK_CHARS[sum % 11];
    if (checked && id[17] != check) return 0;
    int y = (id[6] - '0') * 1000 + (id[7] - '0') * 100 + (id[8] - '0') * 10 + (id[9] - '0');
    int m = (id[10] - '0') * 10 + (id[11] - '0');
    int d = (id[12] - '0') * 10 + (id[13] - '0');
    int ymd = y * 10000 + m * 100 + d;
    if (!valid_ymd(y, m, d) || ymd < birth_low || ymd > birth_high) return 0;
    return key;
}

/*
 * The event date as zige.engine.sql.parse_date_sql reads it; 0 and *ok = 0 when unsure.
 * text = trim(value with U+3000 as space); the day part is what precedes the first space or 'T';
 * '日' dropped, '年' '月' '.' '/' become '-'; eight digits become YYYY-MM-DD; the result must be
 * [1-9]YYY-M(M)-D(D) and a real day. Excel serial numbers (five digits) are left to SQL.
 */
static int parse_day(const uint8_t *s, const uint8_t *e, int *year, int *month_, int *dom) {
    trim(&s, &e);
    if (s >= e) return 0;
    /* ISO 8601, [1-9]YYY-MM-DD (most rows), read where it lies: the loop below gives the same */
    if (e - s == 10 && s[4] == '-' && s[7] == '-' && s[0] != '0') {
        unsigned bad = 0;
        for (int i = 0; i < 10; i++) bad |= i != 4 && i != 7 && (unsigned)(s[i] - '0') > 9;
        if (!bad) {
            const int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
            const int m = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
            if (!valid_ymd(y, m, d)) return 0;
            *year = y;
            *month_ = m;
            *dom = d;
            return 1;
        }
    }
    /* five digits (optionally a fraction): an Excel serial date, left to SQL */
    {
        const uint8_t *p = s;
        int digits = 0;
        while (p < e && *p >= '0' && *p <= '9') { p++; digits++; }
        if (digits == 5 && (p == e || *p == '.')) return 0;
    }
    char u[16];
    int n = 0;
    const uint8_t *p = s;
    while (p < e) {
        uint8_t b = *p;
        if (b == ' ' || b == 'T') break;
        if (b == 0xE3 && e - p >= 3 && p[1] == 0x80 && p[2] == 0x80) break; /* U+3000, a space */
        char out;
        int step = 1;
        if (b >= '0' && b <= '9') out = (char)b;
        else if (b == '-' || b == '.' || b == '/') out = '-';
        else if (b == 0xE5 && e - p >= 3 && p[1] == 0xB9 && p[2] == 0xB4) { out = '-'; step = 3; } /* 年 */
        else if (b == 0xE6 && e - p >= 3 && p[1] == 0x9C && p[2] == 0x88) { out = '-'; step = 3; } /* 月 */
        else if (b == 0xE6 && e - p >= 3 && p[1] == 0x97 && p[2] == 0xA5) { out = 0; step = 3; }   /* 日 */
        else return 0;
        if (out) {
            if (n >= 15) return 0;
            u[n++] = out;
        }
        p += step;
    }
    int y, m, d;
    if (n == 8) {
        for (int i = 0; i < 8; i++) if (u[i] == '-') goto dashed;
        y = (u[0] - '0') * 1000 + (u[1] - '0') * 100 + (u[2] - '0') * 10 + (u[3] - '0');
        m = (u[4] - '0') * 10 + (u[5] - '0');
        d = (u[6] - '0') * 10 + (u[7] - '0');
        if (u[0] == '0') return 0;
        goto check;
    }
dashed:
    /* [1-9][0-9]{3}-[0-9]{1,2}-[0-9]{1,2} */
    if (n < 8 || n > 10) return 0;
    for (int i = 0; i < 4; i++) if (u[i] < '0' || u[i] > '9') return 0;
    if (u[0] == '0' || u[4] != '-') return 0;
    {
        int i = 5, md[2];
        for (int part = 0; part < 2; part++) {
            int start = i, v = 0;
            while (i < n && u[i] != '-') {
                if (i - start >= 2) return 0;
                v = v * 10 + (u[i] - '0');
                i++;
            }
            if (i == start) return 0;
            md[part] = v;
            if (part == 0) {
                if (i >= n || u[i] != '-') return 0;
                i++;
            }
        }
        if (i != n) return 0;
        y = (u[0] - '0') * 1000 + (u[1] - '0') * 100 + (u[2] - '0') * 10 + (u[3] - '0');
        m = md[0];
        d = md[1];
    }
check:
    if (!valid_ymd(y, m, d)) return 0;
    *year = y;
    *month_ = m;
    *dom = d;
    return 1;
}

/* 8 bytes as one word, and whether any of them is `b` (the "has a zero byte" test on v ^ b...b,
 * exact as to whether there is one). */
static inline uint64_t load8(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static inline int has_byte(uint64_t v, uint8_t b) {
    const uint64_t x = v ^ (0x0101010101010101ULL * b);
    return ((x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL) != 0;
}

/* Append `s..e` with U+3000 replaced by a space (after trim): clean_text_sql. */
static uint8_t *put_clean(uint8_t *w, const uint8_t *s, const uint8_t *e) {
    trim(&s, &e);
    while (s < e) {
        /* 8 bytes at a time while none of them is 0xE3 (U+3000's first): the text as it is */
        if (e - s >= 8) {
            const uint64_t v = load8(s);
            if (!has_byte(v, 0xE3)) {
                memcpy(w, &v, 8);
                w += 8;
                s += 8;
                continue;
            }
        }
        if (s[0] == 0xE3 && e - s >= 3 && s[1] == 0x80 && s[2] == 0x80) {
            *w++ = ' ';
            s += 3;
        } else {
            *w++ = *s++;
        }
    }
    return w;
}

static uint8_t *put_decimal(uint8_t *w, int64_t v) {
    char tmp[24];
    int n = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) *w++ = (uint8_t)tmp[--n];
    return w;
}

/*
 * 1 when s..e is what the SQL path takes as a plain ID (exactly 17 ASCII digits and a digit or
 * an upper-case X: zige.engine.sql.fast_id_sql) and its last character is not the GB 11643
 * check character: that path's first check, so the row's reject is bad_id_checksum, whatever
 * else it holds.
 */
static int plain_id_bad_check(const uint8_t *s, const uint8_t *e) {
    if (e - s != 18) return 0;
    int sum = 0;
    for (int i = 0; i < 17; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        sum += (s[i] - '0') * WEIGHTS[i];
    }
    if (!((s[17] >= '0' && s[17] <= '9') || s[17] == 'X')) return 0;
    return s[17] != CHECK_CHARS[sum % 11];
}

/* Whether every cell with a quote in it is exactly "" (an empty value, as CSV quotes it): then
 * the cells are where the delimiters split them, as the CSV reader splits them. */
static int only_empty_quoted(const uint8_t *const *fs, const uint8_t *const *fe, int fields) {
    for (int i = 0; i < fields; i++) {
        const uint8_t *s = fs[i], *e = fe[i];
        if (memchr(s, '"', (size_t)(e - s)) && !(e - s == 2 && s[0] == '"' && s[1] == '"')) return 0;
    }
    return 1;
}

/*
 * The fast split (x86-64): a line's cells found 16 bytes at a time, and the range's UTF-8 checked
 * in 16 KB pieces just ahead of the line being split (which then reads it from the cache),
 * rather than a character at a time in each line. In valid UTF-8 every
 * byte of a multi-byte character is 0x80 or more, so the delimiter, the quote, the line feed and
 * the control characters are found among the ASCII bytes alone. A line with a quote or a control
 * character in it (a carriage return other than its CRLF's), a line longer than MAX_WIDTH cells,
 * and a line that ends within 16 bytes of the range's end go through the byte loop of zige_scan as
 * before, which gives the same cells and flags (tests/unit/test_native_ingest.py holds the two to
 * the same outputs); so does every line of a range that is not valid UTF-8, so that the abort
 * names the same line.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#define ZIGE_FAST_SPLIT 1

/* A check of UTF-8 as DuckDB requires it (no overlongs, no surrogates, at most U+10FFFF), fed
 * in pieces: the "lookup" algorithm of Keiser and Lemire (Validating UTF-8 in less than one
 * instruction per byte, 2021), 16 bytes a step. Needs SSSE3 (zige_scan asks the CPU first). */
typedef struct {
    __m128i prev, error; /* the last 16 bytes fed, the error bits so far */
} utf8_check;

/* The check's step over the next 16 bytes `in`. */
__attribute__((target("ssse3"))) static inline void utf8_step(utf8_check *check, const __m128i in) {
    enum {
        TOO_SHORT = 1 << 0, TOO_LONG = 1 << 1, OVERLONG_3 = 1 << 2, TOO_LARGE = 1 << 3,
        SURROGATE = 1 << 4, OVERLONG_2 = 1 << 5, TOO_LARGE_1000 = 1 << 6, OVERLONG_4 = 1 << 6,
        TWO_CONTS = 1 << 7, CARRY = TOO_SHORT | TOO_LONG | TWO_CONTS,
    };
    /* the first byte's high nibble, its low nibble, the second byte's high nibble: what each
     * allows; a pair is an error where all three agree on a bit */
    const __m128i byte_1_high = _mm_setr_epi8(
        TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG,
        TWO_CONTS, TWO_CONTS, TWO_CONTS, TWO_CONTS, TOO_SHORT | OVERLONG_2, TOO_SHORT,
        TOO_SHORT | OVERLONG_3 | SURROGATE, TOO_SHORT | TOO_LARGE | TOO_LARGE_1000 | OVERLONG_4);
    const __m128i byte_1_low = _mm_setr_epi8(
        CARRY | OVERLONG_3 | OVERLONG_2 | OVERLONG_4, CARRY | OVERLONG_2, CARRY, CARRY,
        CARRY | TOO_LARGE, CARRY | TOO_LARGE | TOO_LARGE_1000, CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000, CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000, CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000, CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000 | SURROGATE, CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000);
    const __m128i byte_2_high = _mm_setr_epi8(
        TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE_1000 | OVERLONG_4,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,
        TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT);
    const __m128i low_nibble = _mm_set1_epi8(0x0F);
    const __m128i prev = check->prev;
    const __m128i prev1 = _mm_alignr_epi8(in, prev, 15);
    const __m128i b1h = _mm_shuffle_epi8(byte_1_high, _mm_and_si128(_mm_srli_epi16(prev1, 4), low_nibble));
    const __m128i b1l = _mm_shuffle_epi8(byte_1_low, _mm_and_si128(prev1, low_nibble));
    const __m128i b2h = _mm_shuffle_epi8(byte_2_high, _mm_and_si128(_mm_srli_epi16(in, 4), low_nibble));
    const __m128i special = _mm_and_si128(_mm_and_si128(b1h, b1l), b2h);
    /* a byte two after a 3- or 4-byte lead, or three after a 4-byte lead, must continue it */
    const __m128i must23 = _mm_or_si128(_mm_subs_epu8(_mm_alignr_epi8(in, prev, 14), _mm_set1_epi8(0xE0 - 0x80)),
                                        _mm_subs_epu8(_mm_alignr_epi8(in, prev, 13), _mm_set1_epi8(0xF0 - 0x80)));
    const __m128i must23_80 = _mm_and_si128(must23, _mm_set1_epi8((char)0x80));
    check->error = _mm_or_si128(check->error, _mm_xor_si128(must23_80, special));
    check->prev = in;
}

/* Feed s[0..n) to the check (n a multiple of 16 unless `last`: the input's end, after which a
 * character cut short is an error). Start from a zeroed check; all valid while `error` is 0. */
__attribute__((target("ssse3"))) static void utf8_feed(utf8_check *check, const uint8_t *s, int64_t n, int last) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) utf8_step(check, _mm_loadu_si128((const __m128i *)(s + i)));
    if (last) {
        /* the last bytes, then ASCII zeros: a character cut short at the end is TOO_SHORT */
        uint8_t tail[16] = {0};
        memcpy(tail, s + i, (size_t)(n - i));
        utf8_step(check, _mm_loadu_si128((const __m128i *)tail));
    }
}

/* Feed the check from *checked on, a piece at a time (16 KB: the split reads them next, from the
 * cache), until it is past `upto` or at `end`; whether all fed so far is valid. */
__attribute__((target("ssse3"))) static int utf8_check_upto(utf8_check *check, const uint8_t **checked,
                                                             const uint8_t *upto, const uint8_t *end) {
    while (*checked <= upto && *checked < end) {
        int64_t n = end - *checked;
        const int last = n <= (16 << 10);
        if (!last) n = 16 << 10;
        utf8_feed(check, *checked, n, last);
        *checked += n;
    }
    return _mm_movemask_epi8(_mm_cmpeq_epi8(check->error, _mm_setzero_si128())) == 0xFFFF;
}

/* Whether s[0..n) is valid UTF-8, by the scan's check (the tests hold it to Python's decoder);
 * -1 where the check is not built or the CPU lacks SSSE3. */
int zige_utf8_valid(const uint8_t *s, int64_t n) {
    if (!__builtin_cpu_supports("ssse3")) return -1;
    utf8_check check;
    memset(&check, 0, sizeof check);
    const uint8_t *checked = s;
    return utf8_check_upto(&check, &checked, s + n, s + n);
}

/* The line from p: its cells (fs, fe, *fields) and its line feed (*nl), when it is a simple one:
 * no quote, no control character (but the CR of its CRLF), at most MAX_WIDTH cells, its line
 * feed found in whole 16-byte blocks before `end`. 0 otherwise (the byte loop decides). */
static int split_simple(const uint8_t *p, const uint8_t *end, uint8_t delim, const uint8_t **fs,
                        const uint8_t **fe, int *fields_out, const uint8_t **nl_out) {
    const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r'), dl = _mm_set1_epi8((char)delim);
    const __m128i quote = _mm_set1_epi8('"'), space = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7F);
    const __m128i minus_one = _mm_set1_epi8(-1);
    int fields = 1, crs = 0;
    const uint8_t *last_cr = NULL;
    fs[0] = p;
    for (const uint8_t *q = p; q + 16 <= end; q += 16) {
        const __m128i v = _mm_loadu_si128((const __m128i *)q);
        const unsigned feeds = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, lf));
        const unsigned delims = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, dl));
        const unsigned returns = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, cr)) & ~delims;
        /* 0x00-0x1F (signed: above -1, below 0x20), 0x7F, the quote; not the delimiter (a tab) */
        const __m128i control = _mm_and_si128(_mm_cmpgt_epi8(v, minus_one), _mm_cmplt_epi8(v, space));
        unsigned special = (unsigned)_mm_movemask_epi8(
            _mm_or_si128(_mm_or_si128(control, _mm_cmpeq_epi8(v, del)), _mm_cmpeq_epi8(v, quote)));
        special &= ~(delims | feeds | returns);
        const unsigned before = feeds ? (1u << __builtin_ctz(feeds)) - 1 : 0xFFFFu;
        if (special & before) return 0;
        const unsigned r = returns & before;
        if (r) {
            crs += __builtin_popcount(r);
            last_cr = q + (31 - __builtin_clz(r));
        }
        for (unsigned d = delims & before; d; d &= d - 1) {
            const uint8_t *at = q + __builtin_ctz(d);
            if (fields >= MAX_WIDTH) return 0;
            fe[fields - 1] = at;
            fs[fields] = at + 1;
            fields++;
        }
        if (feeds) {
            const uint8_t *nl = q + __builtin_ctz(feeds);
            /* a CR is the line's only when it ends the content: CRLF */
            if (crs > 1 || (crs == 1 && last_cr != nl - 1)) return 0;
            const uint8_t *ce = crs ? nl - 1 : nl;
            fe[fields - 1] = ce;
            *fields_out = fields;
            *nl_out = nl;
            return 1;
        }
    }
    return 0;
}
#else
int zige_utf8_valid(const uint8_t *s, int64_t n) {
    (void)s;
    (void)n;
    return -1;
}
#endif

#define FAIL(reason_) do { a->status = (reason_) == 5 ? ZIGE_FULL : ZIGE_ABORT; a->abort_reason = (reason_); a->abort_line = line; goto done; } while (0)

int zige_scan(zige_scan_args *a) {
    const uint8_t *buf = a->buf;
    const uint8_t *p = buf + a->begin, *end = buf + a->end;
    const int width = a->width;
    const uint8_t delim = (uint8_t)a->delim;
    const uint8_t *fs[MAX_WIDTH], *fe[MAX_WIDTH];
    int64_t line = 0, fast = 0, slow = 0, rejects = 0, reject_w = 0;
    uint8_t *slow_w = a->slow_data;
    /* byte classes: 1 delimiter, 2 quote, 4 control character, 8 not ASCII */
    uint8_t cls[256];
    for (int b = 0; b < 256; b++) cls[b] = (uint8_t)(b < 0x20 || b == 0x7F ? 4 : b >= 0x80 ? 8 : 0);
    cls['"'] = 2;
    cls[delim] = 1;
    a->status = ZIGE_OK;
    a->abort_reason = 0;
    a->abort_line = -1;
    int64_t name_w = a->name_pos, detail_w = a->detail_pos;
    if (width < 1 || width > MAX_WIDTH || a->n_other > MAX_OTHERS) FAIL(2);
    int fast_split = 0;
#ifdef ZIGE_FAST_SPLIT
    /* a delimiter the split's blocks can tell from the rest (not a quote, a CR, a LF, non-ASCII) */
    fast_split = !a->byte_loop && delim != '"' && delim != '\r' && delim != '\n' && delim < 0x80
                 && __builtin_cpu_supports("ssse3");
    utf8_check check;
    memset(&check, 0, sizeof check);
    const uint8_t *checked = p; /* the UTF-8 check has seen [begin, checked) */
#endif
    while (p < end) {
        const uint8_t *nl, *next, *ce;
        /* split, and look for what only the SQL path handles */
        int fields = 1, quotes = 0, cr = 0;
        uint8_t seen = 0;
        int bad_utf8 = 0;
#ifdef ZIGE_FAST_SPLIT
        if (fast_split && split_simple(p, end, delim, fs, fe, &fields, &nl)) {
            if (nl >= checked && !utf8_check_upto(&check, &checked, nl, end)) {
                /* not valid UTF-8: the range again, through the byte loop, which names the line */
                fast_split = 0;
                p = buf + a->begin;
                line = fast = slow = rejects = reject_w = 0;
                slow_w = a->slow_data;
                name_w = a->name_pos;
                detail_w = a->detail_pos;
                continue;
            }
            next = nl + 1;
            ce = fe[fields - 1];
            if (ce == p) FAIL(1);
        } else
#endif
        {
            nl = memchr(p, '\n', (size_t)(end - p));
            next = nl ? nl + 1 : end;
            ce = nl ? nl : end; /* content end, without the line feed and a CR of CRLF */
            if (ce > p && ce[-1] == '\r') ce--;
            if (ce == p) FAIL(1);
            fs[0] = p;
            for (const uint8_t *q = p; q < ce;) {
                const uint8_t c = cls[*q];
                if (c == 0) {
                    q++;
                } else if (c == 1) {
                    if (fields < MAX_WIDTH) { fe[fields - 1] = q; fs[fields] = q + 1; }
                    fields++;
                    q++;
                } else if (c == 8) { /* a character beyond ASCII: validated here, in one step */
                    const int k = utf8_char(q, ce);
                    if (!k) { bad_utf8 = 1; break; }
                    q += k;
                } else {
                    seen |= c;
                    quotes += c == 2;
                    cr |= *q == '\r';
                    q++;
                }
            }
            if (fields <= MAX_WIDTH) fe[fields - 1] = ce;
        }
        if (cr) FAIL(6);
        if (bad_utf8) FAIL(4);
        if (quotes & 1) FAIL(3);
        if (!quotes && fields != width) FAIL(2);
        int ok = !quotes && !(seen & 4) && a->id_col >= 0 && a->name_col >= 0 && a->date_col >= 0;
        int64_t key = 0;
        int y = 0, m = 0, d = 0;
        if (ok) {
            key = id_key_of(fs[a->id_col], fe[a->id_col], a->birth_low, a->birth_high);
            ok = key > 0 && parse_day(fs[a->date_col], fe[a->date_col], &y, &m, &d);
            /* a day before the birth date (the key's first 8 digits) is the SQL path's bad_date */
            ok = ok && (int64_t)y * 10000 + m * 100 + d >= key / 1000000000;
        }
        if (ok) {
            /* the name is required: not blank after trim */
            const uint8_t *ts = fs[a->name_col], *te = fe[a->name_col];
            trim(&ts, &te);
            ok = ts < te;
            for (int i = 0; ok && i < a->n_other; i++) {
                int col = a->other_cols[i];
                if (a->other_required[i]) {
                    const uint8_t *os = col >= 0 ? fs[col] : p, *oe = col >= 0 ? fe[col] : p;
                    trim(&os, &oe);
                    ok = os < oe;
                }
            }
        }
        if (ok) {
            if (fast >= a->max_rows) FAIL(5);
            /* the name key: without spaces and U+3000 */
            const uint8_t *s = fs[a->name_col], *e = fe[a->name_col];
            if (name_w + (e - s) > a->name_limit) FAIL(5);
            uint8_t *w = a->name_data + name_w;
            while (s < e) {
                if (e - s >= 8) { /* 8 bytes with no space and no 0xE3 (U+3000's first): as they are */
                    const uint64_t v = load8(s);
                    if (!has_byte(v, ' ') && !has_byte(v, 0xE3)) {
                        memcpy(w, &v, 8);
                        w += 8;
                        s += 8;
                        continue;
                    }
                }
                if (*s == ' ') { s++; continue; }
                if (s[0] == 0xE3 && e - s >= 3 && s[1] == 0x80 && s[2] == 0x80) { s += 3; continue; }
                *w++ = *s++;
            }
            a->name_start[fast] = name_w;
            name_w = w - a->name_data;
            a->name_end[fast] = name_w;
            /* the detail: the other columns, each trimmed, joined by '|' */
            int64_t need = a->n_other;
            for (int i = 0; i < a->n_other; i++) {
                int col = a->other_cols[i];
                if (col >= 0) need += fe[col] - fs[col];
            }
            if (detail_w + need > a->detail_limit) FAIL(5);
            w = a->detail_data + detail_w;
            for (int i = 0; i < a->n_other; i++) {
                int col = a->other_cols[i];
                if (i) *w++ = '|';
                if (col >= 0) w = put_clean(w, fs[col], fe[col]);
            }
            a->detail_start[fast] = detail_w;
            detail_w = w - a->detail_data;
            a->detail_end[fast] = detail_w;
            a->id_key[fast] = key;
            a->day[fast] = days_from_civil(y, m, d);
            a->month[fast] = (int32_t)((y - 1970) * 12 + (m - 1));
            a->sort_key[fast] = ((uint64_t)key << 5) | (uint64_t)(d - 1);
            a->row_no[fast] = a->row_base + line;
            fast++;
        } else {
            /* The two rejects most feeds hold, given here rather than by the SQL path (about
             * 4 us a row there): a plain ID with a wrong check character, and an empty ID on a
             * row that is not blank (its date is one: zige.engine.sql's blank-row test fails).
             * Either is the row's first failing check (ID, name, date, ...), so its reason. */
            int code = 0;
            if (a->reject_row && !(seen & 4) && fields == width && a->id_col >= 0
                && (!quotes || only_empty_quoted(fs, fe, fields))) {
                const uint8_t *is = fs[a->id_col], *ie = fe[a->id_col];
                int yy, mm, dd;
                if (plain_id_bad_check(is, ie)) {
                    code = REJECT_BAD_CHECKSUM;
                } else if ((ie == is || (ie - is == 2 && is[0] == '"')) && a->date_col >= 0
                           && parse_day(fs[a->date_col], fe[a->date_col], &yy, &mm, &dd)) {
                    code = REJECT_MISSING_ID;
                }
            }
            if (code) {
                const int64_t len = code == REJECT_BAD_CHECKSUM ? fe[a->id_col] - fs[a->id_col] : 0;
                if (rejects >= a->max_rows || reject_w + len > a->reject_cap) FAIL(5);
                memcpy(a->reject_data + reject_w, fs[a->id_col], (size_t)len);
                reject_w += len;
                a->reject_row[rejects] = a->row_base + line;
                a->reject_code[rejects] = (uint8_t)code;
                a->reject_end[rejects] = reject_w;
                rejects++;
                line++;
                p = next;
                continue;
            }
            /* without the CR of a CRLF: every slow line ends in a bare LF, as the side file's
             * reader expects of all its lines once it has seen one (a file's last line may have
             * no line end, so it would end differently from the others) */
            int64_t need = (ce - p) + 24;
            if ((slow_w - a->slow_data) + need > a->slow_cap) FAIL(5);
            slow_w = put_decimal(slow_w, line);
            *slow_w++ = delim;
            memcpy(slow_w, p, (size_t)(ce - p));
            slow_w += ce - p;
            *slow_w++ = '\n';
            slow++;
        }
        line++;
        p = next;
    }
done:
    a->n_fast = fast;
    a->n_slow = slow;
    a->n_reject = rejects;
    a->n_lines = line;
    a->slow_bytes = slow_w - a->slow_data;
    return a->status;
}

/*
 * zige_order_rows: the store's order (month, key, day, row) of the valid rows, without exact
 * duplicates, written straight into the output columns, with no random reads over the whole
 * data:
 *
 *   1. each row gets a bucket: its month (rank from month_lowest), then its sort key's place
 *      among `splitters` (sampled quantiles), so that a bucket holds a few thousand rows;
 *   2. the rows (sort key, row number, texts) are copied, in scan order, to their bucket
 *      (one write stream a bucket);
 *   3. each bucket, small enough for the cache, is sorted (radix on the sort key, then the row
 *      number among equal keys), its duplicates dropped (same key and day, name and detail: the
 *      first row wins), and appended to the output.
 *
 * Rows are given as index ranges [range_at[r], range_at[r] + range_n[r]). `bucket` is scratch
 * space for one value a row. The inputs are read only in the first two passes, so the outputs
 * may be the input arrays themselves (pages already in memory: on this kind of machine a fresh
 * page costs more than the work done on it); the offset outputs need n + 2 slots, the others
 * n, the text outputs their bytes (and with name_from2 / detail_from2, the second part's bytes
 * from there). The rows kept come out in two parts (one when the last pass runs on one
 * thread): the first from row 0, its texts from byte 0, the second from row second_part[0]
 * (second_part[1] rows; texts from bytes second_part[2] and second_part[3]; offsets from slot
 * second_part[0] + 1). Returns the first part's rows, or -1 without memory.
 */
/* A row in its bucket: 24 bytes. Its texts follow the bucket's earlier rows' texts (the bucket's
 * rows and texts are laid out in the same order) and its day is the bucket's month with the day
 * of the month in the sort key's last five bits, so neither is stored. */
typedef struct {
    uint64_t sort_key;
    int64_t row_no;
    int32_t name_len, detail_len;
} bucket_row;

static int64_t bucket_of(uint64_t key, const uint64_t *splitters, int64_t n_split) {
    /* the number of splitters <= key, by a branch-free binary search */
    if (n_split == 0) return 0;
    const uint64_t *base = splitters;
    int64_t n = n_split;
    while (n > 1) {
        const int64_t half = n >> 1;
        base = base[half] <= key ? base + half : base;
        n -= half;
    }
    return (base - splitters) + (*base <= key);
}

typedef struct {
    uint64_t sort_key;
    int64_t at;        /* the row's place in its bucket */
} key_at;

/* The bucket's rows by (sort key, row number): a stable LSD radix sort of (key, place) pairs,
 * 8 bits a pass, skipping the bytes all keys of the bucket share, then the row number among
 * equal keys (runs are short). */
static void sort_bucket(const bucket_row *rows, key_at *keys, key_at *tmp, int64_t n) {
    int64_t count[256];
    for (int64_t i = 0; i < n; i++) { keys[i].sort_key = rows[i].sort_key; keys[i].at = i; }
    key_at *src = keys, *dst = tmp;
    for (int b = 0; b < 8; b++) {
        memset(count, 0, sizeof count);
        const int shift = 8 * b;
        for (int64_t i = 0; i < n; i++) count[(src[i].sort_key >> shift) & 0xFF]++;
        int skip = 0;
        for (int v = 0; v < 256; v++) if (count[v] == n) { skip = 1; break; }
        if (skip) continue;
        int64_t total = 0;
        for (int v = 0; v < 256; v++) { int64_t t = count[v]; count[v] = total; total += t; }
        for (int64_t i = 0; i < n; i++) dst[count[(src[i].sort_key >> shift) & 0xFF]++] = src[i];
        key_at *t = src; src = dst; dst = t;
    }
    if (src != keys) memcpy(keys, src, (size_t)n * sizeof *keys);
    for (int64_t i = 1; i < n; i++) {
        if (keys[i].sort_key != keys[i - 1].sort_key || rows[keys[i].at].row_no >= rows[keys[i - 1].at].row_no) continue;
        key_at v = keys[i];
        int64_t j = i - 1;
        while (j >= 0 && keys[j].sort_key == v.sort_key && rows[keys[j].at].row_no > rows[v.at].row_no) {
            keys[j + 1] = keys[j];
            j--;
        }
        keys[j + 1] = v;
    }
}

/* Pass 3 of zige_order_rows over the buckets [b_from, b_to), into its own outputs. */
typedef struct {
    const bucket_row *rows;
    const uint8_t *names, *details;
    const int64_t *count, *name_start, *detail_start; /* each bucket's first row and texts */
    int64_t per_month;
    int32_t month_lowest;
    int64_t b_from, b_to, largest;
    int64_t *out_key;
    int32_t *out_day, *out_month;
    int64_t *out_row, *out_name_end; /* row i's texts end at out_*_end[i] (start: the row before's end) */
    uint8_t *out_name_data;
    int64_t *out_detail_end;
    uint8_t *out_detail_data;
    int64_t kept;          /* out: rows written (-1: no memory) */
    int64_t name_bytes;    /* out: text bytes written */
    int64_t detail_bytes;
} emit_job;

static void emit(emit_job *j) {
    const size_t largest = (size_t)(j->largest > 0 ? j->largest : 1);
    key_at *keys = malloc(largest * sizeof *keys);
    key_at *tmp = malloc(largest * sizeof *tmp);
    int64_t *name_at = malloc(largest * sizeof *name_at), *detail_at = malloc(largest * sizeof *detail_at);
    int64_t kept = 0, name_out = 0, detail_out = 0;
    if (!keys || !tmp || !name_at || !detail_at) {
        free(keys); free(tmp); free(name_at); free(detail_at);
        j->kept = -1;
        return;
    }
    for (int64_t b = j->b_from; b < j->b_to; b++) {
        const int64_t first = j->count[b], m = j->count[b + 1] - first;
        if (m == 0) continue;
        const bucket_row *br = j->rows + first;
        int64_t na = j->name_start[b], da = j->detail_start[b];
        for (int64_t i = 0; i < m; i++) {
            name_at[i] = na; na += br[i].name_len;
            detail_at[i] = da; da += br[i].detail_len;
        }
        sort_bucket(br, keys, tmp, m);
        const int32_t bucket_month = j->month_lowest + (int32_t)(b / j->per_month);
        /* months since 1970-01, floored for months before it */
        const int32_t year = 1970 + (bucket_month >= 0 ? bucket_month / 12 : -((11 - bucket_month) / 12));
        const int32_t month_of_year = bucket_month - (year - 1970) * 12 + 1;
        int64_t run_start = kept; /* the first kept row with the current (key, day) */
        for (int64_t x = 0; x < m; x++) {
            const bucket_row *v = br + keys[x].at;
            if (x == 0 || v->sort_key != keys[x - 1].sort_key) {
                run_start = kept;
            } else {
                int dup = 0;
                for (int64_t y = run_start; y < kept && !dup; y++) {
                    const int64_t ys = y ? j->out_name_end[y - 1] : 0, ds = y ? j->out_detail_end[y - 1] : 0;
                    const int64_t yl = j->out_name_end[y] - ys, yd = j->out_detail_end[y] - ds;
                    dup = yl == v->name_len && yd == v->detail_len
                          && memcmp(j->out_name_data + ys, j->names + name_at[keys[x].at], (size_t)yl) == 0
                          && memcmp(j->out_detail_data + ds, j->details + detail_at[keys[x].at], (size_t)yd) == 0;
                }
                if (dup) continue;
            }
            j->out_key[kept] = (int64_t)(v->sort_key >> 5);
            j->out_day[kept] = days_from_civil(year, month_of_year, (int)(v->sort_key & 31) + 1);
            j->out_month[kept] = bucket_month;
            j->out_row[kept] = v->row_no;
            memcpy(j->out_name_data + name_out, j->names + name_at[keys[x].at], (size_t)v->name_len);
            name_out += v->name_len;
            j->out_name_end[kept] = name_out;
            memcpy(j->out_detail_data + detail_out, j->details + detail_at[keys[x].at], (size_t)v->detail_len);
            detail_out += v->detail_len;
            j->out_detail_end[kept] = detail_out;
            kept++;
        }
    }
    free(keys);
    free(tmp);
    free(name_at);
    free(detail_at);
    j->kept = kept;
    j->name_bytes = name_out;
    j->detail_bytes = detail_out;
}

static void *emit_thread(void *job) {
    emit((emit_job *)job);
    return NULL;
}

/* Passes 1 and 2 of zige_order_rows over one half of the valid rows. */
typedef struct {
    int64_t n_ranges;
    const int64_t *range_at, *range_n;
    int64_t r0, i0, k0, cnt; /* from range r0, index i0 (the k0-th valid row): cnt rows */
    const uint64_t *sort_key;
    const int32_t *month;
    const int64_t *row_no, *name_start, *name_end, *detail_start, *detail_end;
    const uint8_t *name_data, *detail_data;
    int32_t month_lowest;
    int64_t per_month;
    const uint64_t *splitters;
    int64_t n_split;
    int64_t *bucket;
    int64_t *count, *name_bytes, *detail_bytes; /* pass 1: this half's sizes; pass 2: its cursors */
    bucket_row *rows;
    uint8_t *names, *details;
} half_job;

#define EACH_ROW(h, ...)                                                           \
    do {                                                                           \
        int64_t r_ = (h)->r0, i = (h)->i0, k = (h)->k0, left_ = (h)->cnt;           \
        while (left_ > 0 && r_ < (h)->n_ranges) {                                  \
            const int64_t end_ = (h)->range_at[r_] + (h)->range_n[r_];             \
            for (; i < end_ && left_ > 0; i++, k++, left_--) { __VA_ARGS__ }       \
            if (++r_ < (h)->n_ranges) i = (h)->range_at[r_];                        \
        }                                                                          \
    } while (0)

static void *half_count(void *job) {
    half_job *h = job;
    EACH_ROW(h, {
        const int64_t b = (int64_t)(h->month[i] - h->month_lowest) * h->per_month
                          + bucket_of(h->sort_key[i], h->splitters, h->n_split);
        h->bucket[k] = b;
        h->count[b]++;
        h->name_bytes[b] += h->name_end[i] - h->name_start[i];
        h->detail_bytes[b] += h->detail_end[i] - h->detail_start[i];
    });
    return NULL;
}

static void *half_copy(void *job) {
    half_job *h = job;
    EACH_ROW(h, {
        const int64_t b = h->bucket[k];
        bucket_row *w = h->rows + h->count[b]++;
        const int64_t nl = h->name_end[i] - h->name_start[i], dl = h->detail_end[i] - h->detail_start[i];
        w->sort_key = h->sort_key[i];
        w->row_no = h->row_no[i];
        w->name_len = (int32_t)nl;
        w->detail_len = (int32_t)dl;
        memcpy(h->names + h->name_bytes[b], h->name_data + h->name_start[i], (size_t)nl);
        memcpy(h->details + h->detail_bytes[b], h->detail_data + h->detail_start[i], (size_t)dl);
        h->name_bytes[b] += nl;
        h->detail_bytes[b] += dl;
    });
    return NULL;
}

/* Run `pass` on the halves: the second on a thread of its own (or here, without a thread). */
static void run_halves(half_job *half, int halves, void *(*pass)(void *)) {
    pthread_t worker;
    int started = halves == 2 && pthread_create(&worker, NULL, pass, &half[1]) == 0;
    pass(&half[0]);
    if (started) pthread_join(worker, NULL);
    else if (halves == 2) pass(&half[1]);
}

int64_t zige_order_rows(int64_t n_ranges, const int64_t *range_at, const int64_t *range_n,
                        const uint64_t *sort_key, const int32_t *month,
                        const int64_t *row_no, const int64_t *name_start, const int64_t *name_end,
                        const uint8_t *name_data, const int64_t *detail_start, const int64_t *detail_end,
                        const uint8_t *detail_data, int32_t month_lowest, int64_t n_months,
                        const uint64_t *splitters, int64_t n_split, int64_t *bucket,
                        int64_t *out_key, int32_t *out_day, int32_t *out_month, int64_t *out_row,
                        int64_t *out_name_off, uint8_t *out_name_data, int64_t *out_detail_off,
                        uint8_t *out_detail_data, int32_t threads, int64_t split_from,
                        int64_t name_from2, int64_t detail_from2, int64_t *second_part,
                        void *rows_room, int64_t rows_cap, uint8_t *names_room, int64_t names_cap,
                        uint8_t *details_room, int64_t details_cap) {
    const int64_t per_month = n_split + 1, n_buckets = n_months * per_month;
    int64_t n = 0;
    for (int64_t r = 0; r < n_ranges; r++) n += range_n[r];
    int64_t *count = calloc((size_t)n_buckets + 1, sizeof *count);
    int64_t *name_bytes = calloc((size_t)n_buckets + 1, sizeof *name_bytes);
    int64_t *detail_bytes = calloc((size_t)n_buckets + 1, sizeof *detail_bytes);
    int64_t result = -1;
    bucket_row *rows = NULL;
    uint8_t *names = NULL, *details = NULL;
    int own_rows = 1, own_names = 1, own_details = 1;
    if (!count || !name_bytes || !detail_bytes) goto out;
    /* 1. buckets and their sizes, and 2. rows and texts to their buckets: the valid rows in two
     * halves (from split_from rows on), each counted and then copied by a thread of its own;
     * the first half's rows of a bucket go before the second's, so each bucket keeps scan order */
    half_job half[2];
    int halves = threads > 1 && n >= split_from ? 2 : 1;
    for (int h = 0; h < 2; h++) {
        half[h] = (half_job){n_ranges, range_at, range_n, 0, 0, 0, 0, sort_key, month, row_no,
                             name_start, name_end, detail_start, detail_end, name_data, detail_data,
                             month_lowest, per_month, splitters, n_split, bucket, NULL, NULL, NULL,
                             NULL, NULL, NULL};
    }
    half[0].i0 = n_ranges > 0 ? range_at[0] : 0;
    half[0].cnt = halves == 2 ? n / 2 : n;
    if (halves == 2) { /* where the second half starts: range, index, valid-row number */
        int64_t k = half[0].cnt, r = 0;
        while (r < n_ranges && k >= range_n[r]) { k -= range_n[r]; r++; }
        half[1].r0 = r;
        half[1].i0 = r < n_ranges ? range_at[r] + k : 0;
        half[1].k0 = half[0].cnt;
        half[1].cnt = n - half[0].cnt;
    }
    for (int h = 0; h < halves; h++) {
        half[h].count = calloc((size_t)n_buckets, sizeof(int64_t));
        half[h].name_bytes = calloc((size_t)n_buckets, sizeof(int64_t));
        half[h].detail_bytes = calloc((size_t)n_buckets, sizeof(int64_t));
        if (!half[h].count || !half[h].name_bytes || !half[h].detail_bytes) goto free_halves;
    }
    run_halves(half, halves, half_count);
    /* prefix sums: where each bucket's rows and texts start, and each half's part of it */
    int64_t at = 0, name_at = 0, detail_at = 0, largest = 0;
    for (int64_t b = 0; b < n_buckets; b++) {
        count[b] = at; name_bytes[b] = name_at; detail_bytes[b] = detail_at;
        int64_t c = 0;
        for (int h = 0; h < halves; h++) {
            const int64_t ch = half[h].count[b], nh = half[h].name_bytes[b], dh = half[h].detail_bytes[b];
            half[h].count[b] = at; half[h].name_bytes[b] = name_at; half[h].detail_bytes[b] = detail_at;
            at += ch; name_at += nh; detail_at += dh; c += ch;
        }
        if (c > largest) largest = c;
    }
    count[n_buckets] = at; name_bytes[n_buckets] = name_at; detail_bytes[n_buckets] = detail_at;
    const int64_t name_total = name_at, detail_total = detail_at;
    /* The buckets in the caller's room where it gives enough (rows: of zige_bucket_row_bytes()
     * each; memory it keeps from call to call, whose pages are in memory), else our own. */
    own_rows = !rows_room || rows_cap < n;
    own_names = !names_room || names_cap < name_total;
    own_details = !details_room || details_cap < detail_total;
    rows = own_rows ? malloc((size_t)(n > 0 ? n : 1) * sizeof *rows) : rows_room;
    names = own_names ? malloc((size_t)(name_total > 0 ? name_total : 1)) : names_room;
    details = own_details ? malloc((size_t)(detail_total > 0 ? detail_total : 1)) : details_room;
    if (!rows || !names || !details) goto free_halves;
    for (int h = 0; h < halves; h++) {
        half[h].rows = rows;
        half[h].names = names;
        half[h].details = details;
    }
    run_halves(half, halves, half_copy);
    for (int h = 0; h < halves; h++) {
        free(half[h].count); free(half[h].name_bytes); free(half[h].detail_bytes);
        half[h].count = NULL;
    }
    /* 3. each bucket: sort, drop duplicates, append; the buckets in two halves of about as many
     * rows, on two threads (from split_from rows on). Both write straight into the outputs: the
     * first half from the start, the second from where its rows begin in the buckets (no half
     * keeps more than it was given, so they never meet) and its texts from name_from2 and
     * detail_from2 when the caller gives them (past the first half's; where the scan's second
     * range wrote its texts: pages in memory, where the bytes right after the first half's texts
     * lie in the room the scan reserved but never wrote) — else right after the first half's.
     * The halves stay where they are, as two parts of the result (`second_part`): moving them
     * together would move half of the outputs on one thread, onto such pages too. No fresh
     * memory: on this kind of machine a fresh page costs more than the work done on it. */
    int64_t mid = n_buckets;
    if (threads > 1 && n >= split_from) {
        for (mid = 0; mid < n_buckets && count[mid] < n / 2; mid++) {}
    }
    /* Each part's text offsets (its rows + 1 slots, the first 0) are its rows' text ends after a
     * slot of its own: the first part's in [0, kept + 1), the second's in [at2 + 1, at2 + 2 +
     * kept2), so the offset outputs need n + 2 slots, and the parts' slots never meet
     * (kept <= at2). */
    emit_job first = {rows, names, details, count, name_bytes, detail_bytes, per_month, month_lowest, 0, mid, largest,
                      out_key, out_day, out_month, out_row, out_name_off + 1, out_name_data,
                      out_detail_off + 1, out_detail_data, 0, 0, 0};
    emit_job second = first;
    pthread_t worker;
    int started = 0;
    const int64_t at2 = mid < n_buckets ? count[mid] : n;
    const int64_t names2 = name_from2 > name_bytes[mid] ? name_from2 : name_bytes[mid];
    const int64_t details2 = detail_from2 > detail_bytes[mid] ? detail_from2 : detail_bytes[mid];
    if (mid < n_buckets) {
        second = (emit_job){rows, names, details, count, name_bytes, detail_bytes, per_month, month_lowest, mid, n_buckets, largest,
                            out_key + at2, out_day + at2, out_month + at2, out_row + at2,
                            out_name_off + at2 + 2, out_name_data + names2, out_detail_off + at2 + 2,
                            out_detail_data + details2, 0, 0, 0};
        started = pthread_create(&worker, NULL, emit_thread, &second) == 0;
        if (!started) first.b_to = n_buckets; /* no thread: one pass does it all */
    }
    emit(&first);
    if (started) pthread_join(worker, NULL);
    if (first.kept < 0 || (started && second.kept < 0)) goto out;
    const int64_t kept = first.kept;
    out_name_off[0] = 0;
    out_detail_off[0] = 0;
    /* the second part: its first row, its rows, where its texts begin */
    second_part[0] = started ? at2 : kept;
    second_part[1] = started ? second.kept : 0;
    second_part[2] = started ? names2 : 0;
    second_part[3] = started ? details2 : 0;
    if (started) {
        out_name_off[at2 + 1] = 0;
        out_detail_off[at2 + 1] = 0;
    }
    result = kept;
    goto out;
free_halves:
    for (int h = 0; h < 2; h++) {
        if (half[h].count) { free(half[h].count); free(half[h].name_bytes); free(half[h].detail_bytes); }
    }
out:
    free(count); free(name_bytes); free(detail_bytes);
    if (own_rows) free(rows);
    if (own_names) free(names);
    if (own_details) free(details);
    return result;
}

/* The bytes of one row of zige_order_rows' buckets (its caller's room holds n of them). */
int64_t zige_bucket_row_bytes(void) { return (int64_t)sizeof(bucket_row); }
