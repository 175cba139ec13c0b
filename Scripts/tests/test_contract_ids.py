"""Every rule, section and scenario ID that the code cites resolves in docs/contract.md, and
every document the code cites under docs/ exists (the repository explains itself)."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "contract.md").read_text()


def cited_sources():
    for d in ("Sources", "Tests"):
        for p in (ROOT / d).rglob("*"):
            if p.suffix in (".swift", ".c", ".h"):
                yield p, p.read_text(errors="replace")


def test_rule_ids_resolve():
    missing = set()
    for p, text in cited_sources():
        for rule in set(re.findall(r"\b([CSKTP][1-8])\b", text)):
            if not re.search(r"\*\*" + rule + r"\b", DOC):
                missing.add(f"{rule} ({p.relative_to(ROOT)})")
        for sec in set(re.findall(r"docs/contract\.md,? (?:section )?([A-D](?:\.\d+a?)?)\b", text)):
            if not re.search(r"^##+ " + re.escape(sec) + r"\b", DOC, re.M):
                missing.add(f"section {sec} ({p.relative_to(ROOT)})")
        for n in set(re.findall(r"\b[Ss]cenarios? (\d+)\b", text)):
            if int(n) <= 34 and not re.search(r"Scenario " + n + r"\b", DOC):
                missing.add(f"scenario {n} ({p.relative_to(ROOT)})")
    assert not missing, "cited but not in docs/contract.md: " + ", ".join(sorted(missing))


def test_cited_docs_exist():
    missing = set()
    for p, text in cited_sources():
        for doc in set(re.findall(r"\bdocs/([\w-]+\.md)", text)):
            if not (ROOT / "docs" / doc).exists():
                missing.add(f"docs/{doc} ({p.relative_to(ROOT)})")
    assert not missing, "cited documents missing: " + ", ".join(sorted(missing))


def test_checker_catches_a_removed_rule(tmp_path):
    """The check itself can fail: a document without P1 does not resolve P1."""
    assert re.search(r"\*\*P1\b", DOC)
    assert not re.search(r"\*\*P1\b", DOC.replace("**P1", "**X1"))


def test_cited_sections_exist():
    """A citation such as docs/measurement-notes.md, "Heading" names a heading of that file."""
    missing = set()
    for p, text in cited_sources():
        flat = re.sub(r"\n\s*(?://+|#|\*)\s?", " ", text)
        for doc, head in re.findall(r"\bdocs/([\w-]+\.md),\s*\"([^\"]+)\"", flat):
            path = ROOT / "docs" / doc
            if not path.exists():
                continue
            headings = [h.strip() for h in re.findall(r"^#+ (.+)$", path.read_text(), re.M)]
            if not any(h == head or h.startswith(head + " —") for h in headings):
                missing.add(f'docs/{doc}, "{head}" ({p.relative_to(ROOT)})')
    assert not missing, "cited sections missing: " + ", ".join(sorted(missing))
