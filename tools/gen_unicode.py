#!/usr/bin/env python3
"""gen_unicode.py - write src/unicode_tables.c from the Unicode Character
Database (UCD), so the tokenizer needs no Unicode library at run time.

Usage:  python3 tools/gen_unicode.py /usr/share/unicode > src/unicode_tables.c
        (the directory holds UnicodeData.txt, PropList.txt,
        DerivedNormalizationProps.txt and ReadMe.txt; on Debian it comes from
        the unicode-data package). Standard library only.

What it emits (all consumed by src/unicode.c):
  - a two-level lookup table of one "props" byte per code point:
      bits 0-1  class for the pre-tokenizer regex: 0 other, 1 \\p{L}
                (Lu Ll Lt Lm Lo), 2 \\p{N} (Nd Nl No), 3 \\s (White_Space)
      bits 2-3  NFC_Quick_Check: 0 Yes, 1 No, 2 Maybe
  - the same two-level shape for the canonical combining class (ccc)
  - full canonical decompositions (recursively expanded; Hangul is left to
    the algorithm in unicode.c), sorted by code point
  - the primary composites: (first, second) -> composite for every canonical
    two-character decomposition whose composite is not Full_Composition_Exclusion
  - the general category of every code point (two-level again; values are
    the index in GC_NAMES below, the order src/unicode.h's FS_GC_* follow),
    for the regex engine's \\p{Lu}, \\p{P}, ... (src/regex.c)
  - simple case folding (CaseFolding.txt statuses C and S), sorted pairs
    (code point, folded), for the regex engine's (?i)

Two-level table: stage1[cp >> 8] names a 256-entry block in stage2; equal
blocks are stored once, which is what makes the table small (most of the
17 planes are a handful of distinct blocks).

Docs: docs/tokenizer.md
"""
import os
import re
import sys

N_CP = 0x110000
SBASE, LBASE, VBASE, TBASE = 0xAC00, 0x1100, 0x1161, 0x11A7
SCOUNT = 11172


def ucd_version(d):
    with open(os.path.join(d, "ReadMe.txt"), encoding="utf-8") as f:
        m = re.search(r"Version(?:s)?\s*(\d+\.\d+\.\d+)", f.read())
    if not m:
        with open(os.path.join(d, "ReadMe.txt"), encoding="utf-8") as f:
            m = re.search(r"Unicode(\d+\.\d+\.\d+)", f.read())
    return m.group(1) if m else "unknown"


def parse_unicode_data(d):
    """Return gc[cp], ccc[cp], decomp{cp: [cps]} (canonical only)."""
    gc = ["Cn"] * N_CP
    ccc = [0] * N_CP
    decomp = {}
    first = None
    with open(os.path.join(d, "UnicodeData.txt"), encoding="utf-8") as f:
        for line in f:
            fld = line.rstrip("\n").split(";")
            cp = int(fld[0], 16)
            name, cat, cc, dm = fld[1], fld[2], int(fld[3]), fld[5]
            if name.endswith(", First>"):
                first = cp
                continue
            lo = first if name.endswith(", Last>") else cp
            first = None
            for c in range(lo, cp + 1):
                gc[c] = cat
                ccc[c] = cc
            if dm and not dm.startswith("<"):
                decomp[cp] = [int(x, 16) for x in dm.split()]
    return gc, ccc, decomp


def parse_prop_file(path, wanted):
    """Map each wanted property name (or 'Prop=Value' for two-field lines)
    to a set of code points."""
    out = {w: set() for w in wanted}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = [p.strip() for p in line.split(";")]
            key = parts[1] if len(parts) == 2 else parts[1] + "=" + parts[2]
            if key not in out:
                continue
            r = parts[0].split("..")
            lo = int(r[0], 16)
            hi = int(r[-1], 16)
            out[key].update(range(lo, hi + 1))
    return out


def two_level(values, name, ctype):
    blocks, index, stage1 = [], {}, []
    for b in range(N_CP >> 8):
        blk = tuple(values[b << 8:(b + 1) << 8])
        if blk not in index:
            index[blk] = len(blocks)
            blocks.append(blk)
        stage1.append(index[blk])
    s1type = "uint8_t" if len(blocks) <= 256 else "uint16_t"
    lines = ["const %s fs_ucd_%s_stage1[%d] = {" % (s1type, name, len(stage1))]
    for i in range(0, len(stage1), 16):
        lines.append("    " + ", ".join(str(x) for x in stage1[i:i + 16]) + ",")
    lines.append("};")
    lines.append("const %s fs_ucd_%s_stage2[%d][256] = {" % (ctype, name, len(blocks)))
    for blk in blocks:
        lines.append("    {")
        for i in range(0, 256, 32):
            lines.append("        " + ",".join(str(x) for x in blk[i:i + 32]) + ",")
        lines.append("    },")
    lines.append("};")
    return s1type, len(blocks), "\n".join(lines)


# The order of src/unicode.h's FS_GC_* enum. Cn (unassigned) is 0.
GC_NAMES = ["Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No",
            "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So",
            "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co"]


def parse_case_folding(d):
    out = []
    with open(os.path.join(d, "CaseFolding.txt"), encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = [p.strip() for p in line.split(";")]
            if parts[1] in ("C", "S"):
                out.append((int(parts[0], 16), int(parts[2], 16)))
    return sorted(out)


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: gen_unicode.py UCD_DIR > src/unicode_tables.c\n")
        return 1
    d = sys.argv[1]
    version = ucd_version(d)
    gc, ccc, decomp = parse_unicode_data(d)
    ws = parse_prop_file(os.path.join(d, "PropList.txt"), ["White_Space"])["White_Space"]
    norm = parse_prop_file(os.path.join(d, "DerivedNormalizationProps.txt"),
                           ["Full_Composition_Exclusion", "NFC_QC=N", "NFC_QC=M"])

    props = [0] * N_CP
    for cp in range(N_CP):
        g = gc[cp]
        cls = 1 if g[0] == "L" else 2 if g[0] == "N" else 0
        if cp in ws:
            cls = 3  # no White_Space character is a letter or number
        qc = 1 if cp in norm["NFC_QC=N"] else 2 if cp in norm["NFC_QC=M"] else 0
        props[cp] = cls | (qc << 2)

    def full(cp):
        if cp not in decomp:
            return [cp]
        out = []
        for c in decomp[cp]:
            out.extend(full(c))
        return out

    dec = sorted((cp, full(cp)) for cp in decomp)
    pool, dec_rows = [], []
    for cp, seq in dec:
        dec_rows.append((cp, len(pool), len(seq)))
        pool.extend(seq)
    comp = sorted(((a << 21) | b, cp) for cp, (a, b) in
                  ((cp, m) for cp, m in decomp.items() if len(m) == 2)
                  if cp not in norm["Full_Composition_Exclusion"])

    o = []
    o.append("/* unicode_tables.c - GENERATED by tools/gen_unicode.py; do not edit.\n"
             " *\n"
             " * Source: Unicode Character Database %s (Debian unicode-data,\n"
             " * /usr/share/unicode). Regenerate with\n"
             " *     python3 tools/gen_unicode.py /usr/share/unicode > src/unicode_tables.c\n"
             " * The layout of each table is described in tools/gen_unicode.py and\n"
             " * src/unicode.h.\n"
             " *\n"
             " * Docs: docs/tokenizer.md\n"
             " */" % version)
    o.append('#include "unicode.h"\n')
    o.append('const char fs_ucd_version[] = "%s";\n' % version)
    s1t, nb, txt = two_level(props, "props", "uint8_t")
    o.append(txt + "\n")
    s1t2, nb2, txt2 = two_level(ccc, "ccc", "uint8_t")
    o.append(txt2 + "\n")
    o.append("const fs_ucd_decomp fs_ucd_decomps[%d] = {" % len(dec_rows))
    for i in range(0, len(dec_rows), 4):
        o.append("    " + " ".join("{0x%X, %d, %d}," % r for r in dec_rows[i:i + 4]))
    o.append("};")
    o.append("const uint32_t fs_ucd_decomp_pool[%d] = {" % len(pool))
    for i in range(0, len(pool), 8):
        o.append("    " + " ".join("0x%X," % x for x in pool[i:i + 8]))
    o.append("};")
    o.append("const fs_ucd_comp fs_ucd_comps[%d] = {" % len(comp))
    for i in range(0, len(comp), 3):
        o.append("    " + " ".join("{0x%XULL, 0x%X}," % r for r in comp[i:i + 3]))
    o.append("};")
    o.append("const size_t fs_ucd_n_decomps = %d, fs_ucd_n_comps = %d;\n" % (len(dec_rows), len(comp)))
    gcv = [GC_NAMES.index(g) for g in gc]
    s1t3, nb3, txt3 = two_level(gcv, "gc", "uint8_t")
    o.append(txt3 + "\n")
    fold = parse_case_folding(d)
    o.append("const uint32_t fs_ucd_fold[%d][2] = {" % len(fold))
    for i in range(0, len(fold), 4):
        o.append("    " + " ".join("{0x%X, 0x%X}," % r for r in fold[i:i + 4]))
    o.append("};")
    o.append("const size_t fs_ucd_n_fold = %d;" % len(fold))
    sys.stdout.write("\n".join(o) + "\n")
    sys.stderr.write("UCD %s: props %d blocks (%s stage1), ccc %d blocks, %d decomps (%d pool), %d comps\n"
                     % (version, nb, s1t, nb2, len(dec_rows), len(pool), len(comp)))
    sys.stderr.write("general category %d blocks, %d case foldings\n" % (nb3, len(fold)))
    if s1t != "uint8_t" or s1t2 != "uint8_t" or s1t3 != "uint8_t":
        sys.stderr.write("error: more than 256 distinct blocks; unicode.h declares uint8_t stage1\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
