"""Writes python_corpus.json: random strings and what Python's own
textwrap.fill (prettytable's wrapping), PyYAML's safe_dump (cliff's yaml)
and csv.writer (cliff's csv, every --quote) make of them, for
output_corpus_test.go. Seeded, so a rerun writes the same file.

    python3 testdata/python_corpus.py > testdata/python_corpus.json

Made with Debian bookworm's Python 3.11 and PyYAML 6.0.
"""

import csv
import io
import json
import random
import sys
import textwrap

import yaml

random.seed(7)
WRAP_ALPHABET = 'ab-- _.,!1?\u00e9\t'
PIECES = ['a', 'b', '1', ' ', '  ', ':', '#', '-', "'", '"', '\n', '\u00e9',
          '\t', '?', ',', 'x' * 30, '0', '.']
QUOTES = {'all': csv.QUOTE_ALL, 'minimal': csv.QUOTE_MINIMAL,
          'nonnumeric': csv.QUOTE_NONNUMERIC, 'none': csv.QUOTE_NONE}


def wrap_case():
    s = ''.join(random.choice(WRAP_ALPHABET)
                for _ in range(random.randint(0, 30)))
    width = random.randint(1, 12)
    return {'text': s, 'width': width, 'fill': textwrap.fill(s, width)}


def scalar_case():
    n = random.choice([1, 2, 3, 5, 10, 40])
    s = ''.join(random.choice(PIECES) for _ in range(random.randint(0, n)))
    key = ''.join(random.choice(PIECES[:10])
                  for _ in range(random.randint(1, 4)))
    case = {'value': s, 'key': key, 'csv': {},
            'yaml': yaml.safe_dump([{'Value': s, key: 5}],
                                   default_flow_style=False)}
    for name, mode in QUOTES.items():
        out = io.StringIO()
        try:
            csv.writer(out, quoting=mode, lineterminator='\n',
                       escapechar='\\').writerow([s, 5, None])
            case['csv'][name] = out.getvalue()
        except csv.Error as e:
            case['csv'][name] = 'error: %s' % e
    return case


json.dump({'wrap': [wrap_case() for _ in range(500)],
           'scalars': [scalar_case() for _ in range(500)]},
          sys.stdout, indent=0, ensure_ascii=False)
sys.stdout.write('\n')
