"""Log tags: every OGLOGNO(nnnnn) call site has its own number, the next free number in tags.next
is above all of them, and README's diagnostic table names exactly the tags that exist in the code."""
import glob
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def code_tags():
    """Tags of log call sites (OGLOGNO) and of the configuration rules (OG_TAG, og_check.h)."""
    tags = []
    for path in glob.glob(os.path.join(REPO, '*.c')) + glob.glob(os.path.join(REPO, '*.h')):
        with open(path) as f:
            text = f.read()
        tags += re.findall(r'(?:OGLOGNO|OG_TAG)\((\d{5})\)', text)
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


CORE_MAY_INCLUDE = re.compile(r'^(apr[_.]|apu|openssl/|og_|[a-z]+\.h$|sys/|arpa/|netinet/)')


def test_core_files_include_no_httpd_header():
    # the core (og_*.c, og_*.h) builds without httpd: only APR, OpenSSL, POSIX and itself
    bad = []
    for path in glob.glob(os.path.join(REPO, 'og_*.[ch]')):
        with open(path) as f:
            for line in f:
                m = re.match(r'\s*#\s*include\s*[<"]([^>"]+)[>"]', line)
                if m and (not CORE_MAY_INCLUDE.match(m.group(1)) or m.group(1).startswith(('http', 'mod_', 'ap_', 'util_', 'unixd'))):
                    bad.append(f'{os.path.basename(path)}: {m.group(1)}')
    assert not bad, bad
