"""Log tags: every OGLOGNO(nnnnn) call site has its own number, the next free number in tags.next
is above all of them, and README's diagnostic table names exactly the tags that exist in the code."""
import glob
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def code_tags():
    """Tags of log call sites (OGLOGNO) and of the configuration rules (og_check.c's TAG_*)."""
    tags = []
    for path in glob.glob(os.path.join(REPO, '*.c')):
        with open(path) as f:
            text = f.read()
        tags += re.findall(r'OGLOGNO\((\d{5})\)', text)
        tags += ['%05d' % int(n) for n in re.findall(r'#define TAG_\w+\s+(\d+)', text)]
    return tags


def test_every_tag_is_used_once():
    tags = code_tags()
    assert tags, 'no OGLOGNO call sites found'
    dups = sorted({t for t in tags if tags.count(t) > 1})
    assert not dups, f'tags used more than once: {dups}'


def test_tags_next_is_above_every_tag():
    with open(os.path.join(REPO, 'tags.next')) as f:
        nxt = int(f.read().strip())
    assert nxt > max(int(t) for t in code_tags())


def test_readme_lists_exactly_the_real_tags():
    with open(os.path.join(REPO, 'README.md')) as f:
        readme = set(re.findall(r'OG(\d{5})', f.read()))
    assert readme <= set(code_tags()), sorted(readme - set(code_tags()))
    assert set(code_tags()) <= readme, f'tags missing from README: {sorted(set(code_tags()) - readme)}'
