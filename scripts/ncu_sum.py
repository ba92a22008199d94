# Sums an ncu --csv run of gpu__time_duration.sum by kernel name (count, total and mean time).
# Usage: python3 scripts/ncu_sum.py ncu.csv
import csv, sys, collections
rows = list(csv.reader(open(sys.argv[1])))
hdr = None
agg = collections.OrderedDict()
for r in rows:
    if 'Kernel Name' in r and 'Metric Value' in r:
        hdr = r; continue
    if not hdr or len(r) != len(hdr): continue
    d = dict(zip(hdr, r))
    if d.get('Metric Name') != 'gpu__time_duration.sum': continue
    name = d['Kernel Name'][:90]
    v = float(d['Metric Value'].replace(',', ''))
    unit = d.get('Metric Unit', '')
    us = v / 1000 if unit in ('nsecond', 'ns') else v if unit in ('usecond', 'us') else v * 1000 if unit in ('msecond', 'ms') else v
    a = agg.setdefault(name, [0, 0.0]); a[0] += 1; a[1] += us
tot = sum(a[1] for a in agg.values()); n = sum(a[0] for a in agg.values())
print(f"kernels {n}, total {tot:.1f} us")
for k, (c, t) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
    print(f"{c:5d} {t:9.1f} us  {t/c:7.2f} us/each  {k}")
