# The chaos kit's timeline: what a person looks at first after a run.
#
#   gnuplot -e "dir='DIR'" [-e "name='NAME'; verdict='PASS'"] bench/chaos/timeline.gp
#
# Reads DIR/timeline.dat and DIR/bands.dat (postd-chaos-report writes them)
# and DIR/plan.txt (for the end of the load); writes DIR/timeline.png.
# Without `name` and `verdict` the title is DIR/title.txt (also the
# report's). Three panels on one time axis: answers per second, p99
# latency, the queue and rows written per second; every fault a shaded band
# across all three, labelled in each.

if (!exists("dir")) dir = "."
data = dir . "/timeline.dat"
bands_file = dir . "/bands.dat"

if (exists("name") && exists("verdict")) {
  title_text = name . ": " . verdict
} else {
  title_text = system(sprintf("cat '%s/title.txt' 2>/dev/null", dir))
}
if (strlen(title_text) == 0) title_text = "chaos run"

if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
  set terminal pngcairo size 1600,1000 noenhanced font "DejaVu Sans,12" linewidth 1.5
} else {
  set terminal png size 1600,1000 font "DejaVuSans,11"
}
set output dir . "/timeline.png"

stats data using 1 nooutput
xmax = STATS_max + 1
load_end = system(sprintf("awk '$1 == \"duration\" { print $2 }' '%s/plan.txt' 2>/dev/null", dir))

# ------------------------------------------------------------------ bands
# bands.dat: `start_s end_s "label" kind`, one line per fault. The kind's
# number picks its colour (write_bands in report.cpp).
kind_color(k) = k == 1 ? "#d62728" : k == 2 ? "#ff7f0e" : k == 3 ? "#1f77b4" : \
                k == 4 ? "#9467bd" : k == 5 ? "#8c564b" : k == 6 ? "#bcbd22" : \
                k == 7 ? "#17becf" : "#7f7f7f"
band_words = system(sprintf("grep -v '^#' '%s' 2>/dev/null", bands_file))
band_count = words(band_words) / 4
band_start(i) = real(word(band_words, 4 * i - 3))
band_end(i) = real(word(band_words, 4 * i - 2))
band_label(i) = word(band_words, 4 * i - 1)
band_kind(i) = int(word(band_words, 4 * i))

# Labels of bands close in time go on successive rows, so they never overlap.
array label_row[band_count > 0 ? band_count : 1]
row_free_from_1 = -1e9; row_free_from_2 = -1e9; row_free_from_3 = -1e9
label_width = xmax / 9.0
do for [i = 1:band_count] {
  s = band_start(i)
  label_row[i] = s >= row_free_from_1 ? 1 : s >= row_free_from_2 ? 2 : \
                 s >= row_free_from_3 ? 3 : 1
  if (label_row[i] == 1) { row_free_from_1 = s + label_width }
  if (label_row[i] == 2) { row_free_from_2 = s + label_width }
  if (label_row[i] == 3) { row_free_from_3 = s + label_width }
}

do for [i = 1:band_count] {
  e = band_end(i) > band_start(i) + 0.15 ? band_end(i) : band_start(i) + 0.15
  set object i rect from first band_start(i), graph 0 to first e, graph 1 \
      fc rgb kind_color(band_kind(i)) fs transparent solid 0.16 noborder behind
  set label i band_label(i) at first band_start(i), graph (1.0 - 0.085 * label_row[i]) \
      left offset character 0.4, 0 font ",10" tc rgb kind_color(band_kind(i)) front
}
if (strlen(load_end) > 0) {
  set arrow 1 from first real(load_end), graph 0 to first real(load_end), graph 1 \
      nohead dt 2 lw 1 lc rgb "#555555" front
  set label 999 "load ends" at first real(load_end), graph 0.03 right \
      offset character -0.4, 0 font ",9" tc rgb "#555555" front
}

# ------------------------------------------------------------------ layout
set multiplot title title_text font ",16"
set xrange [0:xmax]
set grid xtics ytics lc rgb "#dddddd" lw 1 dt 1
set border 3 lc rgb "#444444"
set tics nomirror out
# Each panel's key sits just above it, out of the data's way.
set key horizontal right bottom at graph 1, graph 1.01 noopaque nobox \
    samplen 2.5 font ",10" reverse Left width 1 maxrows 1
set lmargin at screen 0.075
set rmargin at screen 0.93
set format x ""
set style data lines

# 1: answers per second
set tmargin at screen 0.93
set bmargin at screen 0.66
set ylabel "answers / s" offset 1,0
set yrange [0:*]
# Counts of whole seconds: steps from each second's start.
plot data using 1:8 with steps title "offered" lc rgb "#888888" dt 2 lw 1.5, \
     ''   using 1:2 with steps title "202 accepted" lc rgb "#2ca02c" lw 2.5, \
     ''   using 1:3 with steps title "503" lc rgb "#ff7f0e" lw 2, \
     ''   using 1:4 with steps title "other status or no answer" lc rgb "#d62728" lw 2

# 2: p99 latency of the sends due in each second
set tmargin at screen 0.63
set bmargin at screen 0.36
set ylabel "p99 latency (ms)" offset 1,0
set logscale y
set yrange [*:*]
set format y "%g"
plot data using ($1 + 0.5):($5 > 0 ? $5 : NaN) title "p99 of the sends due in each second" \
     lc rgb "#1f77b4" lw 2

# 3: the queue and the rows PostgreSQL gained
unset logscale y
set tmargin at screen 0.33
set bmargin at screen 0.07
set format x "%g"
set xlabel "seconds since t0"
set ylabel "jobs in the queue" offset 1,0 tc rgb "#8c564b"
set y2label "rows written / s" offset -1,0 tc rgb "#9467bd"
set yrange [0:*]
set y2range [0:*]
set ytics tc rgb "#8c564b"
set y2tics tc rgb "#9467bd"
set border 11 lc rgb "#444444"
plot data using ($1 + 0.5):6 title "jobs waiting" lc rgb "#8c564b" lw 2.5 axes x1y1, \
     ''   using ($1 + 0.5):9 title "active" lc rgb "#e377c2" lw 1.5 dt 2 axes x1y1, \
     ''   using ($1 + 0.5):10 title "delayed" lc rgb "#7f7f7f" lw 1.5 dt 3 axes x1y1, \
     ''   using ($1 + 0.5):7 title "rows written / s" lc rgb "#9467bd" lw 2.5 axes x1y2

unset multiplot
