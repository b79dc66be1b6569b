# gnuplot script for bench/run.sh: latency medians (µs, log scale) and throughput by client count.
# Variables: latency, throughput (data files), output (PNG).
set terminal pngcairo size 1100,450 font ",10" noenhanced
set output output
set multiplot layout 1,2 title "groupd benchmarks (one run, one machine)"

set title "median latency per cycle (µs, log scale)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set logscale y
set grid ytics
set xtics rotate by -25
unset key
plot latency using 2:xtic(1) lc rgb "#3070b0"

set title "acquire+release cycles per second"
set yrange [0:*]
unset logscale y
set xtics norotate
plot throughput using 2:xtic(1) lc rgb "#40a040"

unset multiplot
