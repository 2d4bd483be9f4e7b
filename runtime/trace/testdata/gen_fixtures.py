#!/usr/bin/env python3
"""Generates the trace fixtures in this folder with CPython's own pickle module.

The Go tests only read the files; run this again (python3 gen_fixtures.py, from
this folder) only to change them. Every file is small: the large-trace
benchmark builds its pickle in Go instead.
"""
import decimal
import json
import pickle
import pickletools

# Insertion order deliberately not sorted: the Go loader orders entries by key.
CAPACITY = {
    3: {'computation': 30.5, 'communication': 3000.25},
    1: {'computation': 10.0, 'communication': 1000.0},
    2: {'computation': 7, 'communication': 2048},  # ints are valid numbers too
    10: {'computation': 100.125, 'communication': 10000.5},
    0: {'computation': 0.5, 'communication': 512.0},
}

BEHAVIOR = {
    7: {'duration': 211625, 'inactive': [65600, 155000, 300000], 'finish_time': 518400,
        'active': [14400, 122400, 250000], 'model': 'CPH1801'},
    2: {'duration': 1000, 'inactive': [500], 'finish_time': 1000,
        'active': [100], 'model': 'SM-G960F'},
    5: {'duration': 86400, 'inactive': [], 'finish_time': 86400,
        'active': [], 'model': ''},
}


def many_capacity(n):
    # Exactly representable values so the Go test can recompute them.
    return {k: {'computation': k + 0.25, 'communication': 1000.0 + 2 * k} for k in range(n)}


def write(name, data):
    with open(name, 'wb') as f:
        f.write(data)


def main():
    for proto in (0, 2, 4, 5):
        write(f'capacity_p{proto}.pkl', pickle.dumps(CAPACITY, protocol=proto))
        write(f'behavior_p{proto}.pkl', pickle.dumps(BEHAVIOR, protocol=proto))
    with open('capacity.json', 'w') as f:
        json.dump({str(k): v for k, v in CAPACITY.items()}, f, indent=1)
    with open('behavior.json', 'w') as f:
        json.dump({str(k): v for k, v in BEHAVIOR.items()}, f, indent=1)

    # Over 1000 entries (several SETITEMS batches), memo indices past 255 and,
    # in protocol 4, more than one 64 KiB frame.
    write('capacity_many_p4.pkl', pickle.dumps(many_capacity(2500), protocol=4))

    # Inputs the loader must reject with a clear error.
    write('bad_toplevel_list_p2.pkl', pickle.dumps([1, 2, 3], protocol=2))
    write('bad_missing_computation_p4.pkl',
          pickle.dumps({1: {'communication': 5.0}}, protocol=4))
    write('bad_nan_p2.pkl',
          pickle.dumps({1: {'computation': float('nan'), 'communication': 5.0}}, protocol=2))
    write('bad_object_p4.pkl',
          pickle.dumps({1: {'computation': decimal.Decimal('1.5'), 'communication': 5.0}},
                       protocol=4))
    write('bad_unsorted_p4.pkl',
          pickle.dumps({1: {'duration': 10, 'inactive': [50, 20], 'finish_time': 100,
                            'active': [40, 10], 'model': 'x'}}, protocol=4))
    write('bad_bigkey_p2.pkl',
          pickle.dumps({2 ** 70: {'computation': 1.0, 'communication': 5.0}}, protocol=2))
    # String keys that parse as ints are accepted.
    write('capacity_strkeys_p4.pkl',
          pickle.dumps({'4': {'computation': 1.0, 'communication': 5.0},
                        '-1': {'computation': 2.0, 'communication': 6.0}}, protocol=4))

    for proto in (0, 2, 4):
        print(f'--- capacity protocol {proto}')
        pickletools.dis(pickle.dumps({3: CAPACITY[3], 1: CAPACITY[1]}, protocol=proto))
    print('--- behavior protocol 2')
    pickletools.dis(pickle.dumps({7: BEHAVIOR[7]}, protocol=2))


if __name__ == '__main__':
    main()
