#!/usr/bin/env python3
"""Section-3 man pages from the kernel-doc comments of the public headers.

    kdoc-man.py --list HEADER...            the documented functions
    kdoc-man.py --out DIR --version V HEADER...
                                            DIR/NAME.3 for each of them

A function is documented by the /** ... */ comment right before its
declaration, whose first line is "name() - summary", then "@arg: text"
lines, the description, and a "Return:" paragraph.  The structures a
prototype names get their own documented members in the page.  Only the
functions whose comment names them are listed; a comment that names
another function than the declaration after it is an error.
"""
import os
import re
import sys

COMMENT = re.compile(r"/\*\*(.*?)\*/\s*([^;{]*[;{])", re.S)
FUNC = re.compile(r"^\s*([a-z_][a-z_0-9]*)\(\)\s+-\s+(.*)$")
STRUCT = re.compile(r"^\s*struct\s+([a-z_0-9]+)\s+-\s+(.*)$")
PARAM = re.compile(r"^@([a-z_0-9.]+|\.\.\.):\s*(.*)$")
SECTION = re.compile(r"^(Return|Context|Note|Locking):\s*(.*)$")


def clean(body):
    """The comment's lines without their leading ' * '."""
    lines = []
    for line in body.split("\n"):
        line = re.sub(r"^\s*\* ?", "", line.rstrip())
        lines.append(line)
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def parse(text):
    """(functions, structs) documented in @text."""
    funcs, structs = [], {}
    for m in COMMENT.finditer(text):
        lines = clean(m.group(1))
        decl = " ".join(m.group(2).split())
        if not lines:
            continue
        f, s = FUNC.match(lines[0]), STRUCT.match(lines[0])
        if not f and not s:
            continue
        doc = {"summary": (f or s).group(2), "params": [], "body": [],
               "sections": {}}
        cur = None  # where continuation lines go
        for line in lines[1:]:
            p, sec = PARAM.match(line), SECTION.match(line)
            if p:
                doc["params"].append([p.group(1), p.group(2)])
                cur = doc["params"][-1]
            elif sec:
                doc["sections"][sec.group(1)] = [sec.group(2)]
                cur = doc["sections"][sec.group(1)]
            elif cur is not None and isinstance(cur[0], str) and \
                    cur in doc["params"] and line.strip():
                cur[1] += " " + line.strip()
            elif cur is not None and cur not in doc["params"]:
                cur.append(line)
            else:
                cur = None
                doc["body"].append(line)
        if f:
            name = f.group(1)
            dm = re.search(r"\b([a-z_][a-z_0-9]*)\s*\(", decl)
            if not dm or dm.group(1) != name:
                sys.exit("kdoc-man: the comment of %s() is followed by "
                         "'%s'" % (name, decl))
            doc["name"], doc["proto"] = name, decl.rstrip("{").strip()
            funcs.append(doc)
        else:
            doc["name"], doc["decl"] = s.group(1), m.group(2)
            end = text.find("};", m.end(2))
            doc["definition"] = text[m.start(2):end + 2]
            structs[s.group(1)] = doc
    return funcs, structs


def roff(text):
    """Kernel-doc inline markup in roff."""
    text = text.replace("\\", "\\e")
    text = re.sub(r"``([^`]+)``", r"\\fB\1\\fR", text)
    text = re.sub(r"%([A-Za-z_0-9]+)", r"\\fB\1\\fR", text)
    text = re.sub(r"@([a-z_0-9]+)", r"\\fI\1\\fR", text)
    text = re.sub(r"\b([a-z_][a-z_0-9]*)\(\)", r"\\fB\1\\fR()", text)
    return text


def paragraphs(lines):
    """Lines as roff paragraphs; "- item" lines as a bullet list."""
    out, para = [], []

    def flush():
        if para:
            out.append(".PP")
            out.append(roff(" ".join(para)))
            para.clear()

    item = None
    for line in lines + [""]:
        stripped = line.strip()
        if stripped.startswith("- "):
            flush()
            if item:
                out.append(".IP \\(bu 2")
                out.append(roff(" ".join(item)))
            item = [stripped[2:]]
        elif item is not None and stripped and line.startswith("  "):
            item.append(stripped)
        else:
            if item:
                out.append(".IP \\(bu 2")
                out.append(roff(" ".join(item)))
                item = None
            if stripped:
                para.append(stripped)
            else:
                flush()
    for i, line in enumerate(out):
        if line.startswith((".", "'")) and not re.match(r"^\.(PP|IP)", line):
            out[i] = "\\&" + line
    return out


def page(doc, header, structs, siblings, version):
    name = doc["name"]
    out = ['.TH %s 3 "" "luo %s" "libluo Manual"' % (name.upper(), version),
           ".SH NAME", "%s \\- %s" % (name, roff(doc["summary"])),
           ".SH SYNOPSIS", ".nf",
           ".B #include <luo/%s>" % header, ".PP",
           roff(doc["proto"]), ".fi", ".PP",
           "Link with \\fB\\-lluo\\fR (\\fBpkg\\-config \\-\\-libs luo\\fR)."]
    if doc["params"]:
        out.append(".SH ARGUMENTS")
        for p, text in doc["params"]:
            out += [".TP", ".I %s" % p, roff(text)]
    body = doc["body"] + sum(([""] + doc["sections"][k]
                              for k in ("Context", "Locking", "Note")
                              if k in doc["sections"]), [])
    if any(l.strip() for l in body):
        out.append(".SH DESCRIPTION")
        out += paragraphs(body)
    used = [s for s in re.findall(r"struct\s+([a-z_0-9]+)", doc["proto"])
            if s in structs]
    for s in dict.fromkeys(used):
        st = structs[s]
        out += [".SS struct %s" % s, roff(st["summary"]) + ".", ".PP", ".nf",
                roff(st["definition"]), ".fi"]
        for p, text in st["params"]:
            out += [".TP", ".I %s" % p, roff(text)]
    if "Return" in doc["sections"]:
        out.append(".SH RETURN VALUE")
        out += paragraphs(doc["sections"]["Return"])
    out.append(".SH SEE ALSO")
    others = [s for s in siblings if s != name]
    refs = ["\\fB%s\\fR(3)" % s for s in others] + ["\\fBluoctl\\fR(1)"]
    out.append(",\n".join(refs) + ";")
    out.append("the documentation in share/doc/luo (architecture.md).")
    return "\n".join(out) + "\n"


def main(argv):
    out_dir, version, headers, list_only = None, "", [], False
    it = iter(argv)
    for a in it:
        if a == "--list":
            list_only = True
        elif a == "--out":
            out_dir = next(it)
        elif a == "--version":
            version = next(it)
        else:
            headers.append(a)
    everything = []
    for h in headers:
        funcs, structs = parse(open(h).read())
        everything.append((os.path.basename(h), funcs, structs))
    names = [f["name"] for _, funcs, _ in everything for f in funcs]
    if len(set(names)) != len(names):
        sys.exit("kdoc-man: a function is documented twice")
    if list_only:
        print("\n".join(names))
        return
    os.makedirs(out_dir, exist_ok=True)
    for header, funcs, structs in everything:
        siblings = [f["name"] for f in funcs]
        for f in funcs:
            with open(os.path.join(out_dir, f["name"] + ".3"), "w") as o:
                o.write(page(f, header, structs, siblings, version))


if __name__ == "__main__":
    main(sys.argv[1:])
