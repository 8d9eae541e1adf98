//! `d11sim chart DIR`: redraws the charts and report.html of a results folder from its files.

use crate::chart::{self, ChartFormat};
use crate::cli::ChartArgs;
use crate::error::Result;

/// The file that marks a `compare` folder.
const COMPARE_CSV: &str = "compare.csv";

pub fn run(args: &ChartArgs) -> Result<()> {
    let format: ChartFormat = args.chart_format.into();
    if args.dir.join(COMPARE_CSV).exists() {
        chart::draw_compare(&args.dir, format)
    } else {
        chart::draw_all(&args.dir, format)
    }
}
