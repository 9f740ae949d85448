//! The evaluation figure: the ROC curve (log-scale FAR) beside the genuine and impostor
//! distance histograms with the threshold marked. PNG or SVG, chosen by the file extension.

use crate::roc::Roc;
use plotters::prelude::*;
use std::path::Path;

/// The font embedded for PNG text (DejaVu Sans, see `assets/DejaVuSans.LICENSE`).
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// What the figure shows.
pub struct Figure<'a> {
    /// Title line.
    pub title: String,
    /// The ROC over all pairs.
    pub roc: &'a Roc,
    /// Genuine (same person) distances.
    pub genuine: &'a [f64],
    /// Impostor distances.
    pub impostor: &'a [f64],
    /// The protocol's threshold (mean over folds).
    pub threshold: f64,
    /// The metric's name, for the axis.
    pub metric: &'a str,
}

type Err = Box<dyn std::error::Error + Send + Sync>;

/// Checks that `path` names a figure this module can write (`.png` or `.svg`), so that a
/// caller can refuse it before a long evaluation rather than after.
pub fn check_path(path: &Path) -> Result<(), String> {
    match extension(path).as_str() {
        "png" | "svg" => Ok(()),
        "" => Err(format!("{}: a plot is a .png or .svg file; this name has no extension", path.display())),
        other => Err(format!("{}: a plot is a .png or .svg file, not .{other}", path.display())),
    }
}

fn extension(path: &Path) -> String {
    path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase()
}

/// Writes the figure to `path` (`.png` or `.svg`). Text is laid out with the embedded font in
/// both formats (an SVG names the font family and carries no glyphs).
pub fn write(path: &Path, fig: &Figure) -> Result<(), Err> {
    // Points are in increasing threshold order: the last one at or below the threshold.
    let at = fig.roc.points.iter().rev().find(|p| p.threshold <= fig.threshold).copied();
    let chart = Chart {
        title: fig.title.clone(),
        roc_caption: format!("ROC  (AUC {:.4}, EER {:.2}%)", fig.roc.auc, fig.roc.eer * 100.0),
        roc: fig.roc.points.iter().map(|p| (p.far, p.tar)).collect(),
        roc_axes: ("false accept rate (log scale)", "true accept rate"),
        mark: at.map(|p| (p.far, p.tar, format!("threshold {:.3}: FAR {:.2e}, TAR {:.4}", fig.threshold, p.far, p.tar))),
        first: (fig.genuine, "same person"),
        second: (fig.impostor, "different people"),
        hist_caption: format!(
            "{} distances ({} same-person pairs, {} different-people pairs)",
            fig.metric,
            fig.genuine.len(),
            fig.impostor.len()
        ),
        hist_axes: (format!("{} distance", fig.metric), "fraction of pairs"),
        threshold: fig.threshold,
    };
    render(path, &chart)
}

/// Writes the liveness figure of a test report to `path` (`.png` or `.svg`): APCER against
/// 1 - BPCER, and the live and attack score histograms with the model's threshold.
pub fn write_pad(path: &Path, r: &crate::liveness::EvalReport) -> Result<(), Err> {
    let t = r.at_threshold.threshold;
    let chart = Chart {
        title: format!(
            "liveness: APCER {:.2}%, BPCER {:.2}%, ACER {:.2}% at threshold {:.3}",
            r.at_threshold.apcer * 100.0,
            r.at_threshold.bpcer * 100.0,
            r.at_threshold.acer * 100.0,
            t
        ),
        roc_caption: format!("ROC  (EER {:.2}%)", r.eer * 100.0),
        // The PAD ROC's thresholds are distances -score: live when the score is above -threshold.
        roc: r.roc.iter().map(|p| (p.far, p.tar)).collect(),
        roc_axes: ("APCER: attacks accepted (log scale)", "1 - BPCER: live faces accepted"),
        mark: Some((r.at_threshold.apcer, 1.0 - r.at_threshold.bpcer, format!("threshold {t:.3}"))),
        first: (&r.scores.0, "live"),
        second: (&r.scores.1, "attack"),
        hist_caption: format!("liveness scores ({} live, {} attack photos)", r.scores.0.len(), r.scores.1.len()),
        hist_axes: ("liveness score".to_string(), "fraction of photos"),
        threshold: t,
    };
    render(path, &chart)
}

/// What is drawn: a ROC on the left, two histograms and a threshold on the right.
struct Chart<'a> {
    title: String,
    roc_caption: String,
    roc: Vec<(f64, f64)>,
    roc_axes: (&'static str, &'static str),
    mark: Option<(f64, f64, String)>,
    first: (&'a [f64], &'static str),
    second: (&'a [f64], &'static str),
    hist_caption: String,
    hist_axes: (String, &'static str),
    threshold: f64,
}

/// Both backends measure text with the registered font: without it SVG text fails.
fn register_font() {
    static FONT_ONCE: std::sync::Once = std::sync::Once::new();
    FONT_ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// A training curve figure: each series `(name, points)` in its own panel, side by side, over
/// the same x axis (e.g. the loss and the active-triplet fraction per step).
pub fn write_curves(path: &Path, title: &str, x_label: &str, series: &[(&str, &[(f64, f64)])]) -> Result<(), Err> {
    check_path(path)?;
    register_font();
    let size = (1400u32, 560u32);
    match extension(path).as_str() {
        "svg" => {
            let root = SVGBackend::new(path, size).into_drawing_area();
            draw_curves(&root, title, x_label, series)?;
            root.present()?;
        }
        _ => {
            let mut buf = vec![0u8; (size.0 * size.1 * 3) as usize];
            {
                let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
                draw_curves(&root, title, x_label, series)?;
                root.present()?;
            }
            image::RgbImage::from_raw(size.0, size.1, buf).ok_or("plot buffer")?.save(path)?;
        }
    }
    Ok(())
}

fn draw_curves<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_label: &str,
    series: &[(&str, &[(f64, f64)])],
) -> Result<(), Err>
where
    DB::ErrorType: 'static,
{
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| -> Err { x.to_string().into() };
    root.fill(&WHITE).map_err(e)?;
    let (top, body) = root.split_vertically(50);
    top.draw(&Text::new(title.to_string(), (20, 14), ("sans-serif", 22).into_font())).map_err(e)?;
    let panels = body.split_evenly((1, series.len().max(1)));
    for ((name, pts), area) in series.iter().zip(panels.iter()) {
        let finite: Vec<(f64, f64)> = pts.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
        let (x0, x1) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.0), b.max(p.0)));
        let (y0, y1) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.1), b.max(p.1)));
        let (x0, x1) = if x0 < x1 { (x0, x1) } else { (0.0, 1.0) };
        let (y0, y1) = if y0 < y1 { (y0, y1) } else { (y0.min(0.0), y0.max(0.0) + 1.0) };
        let mut chart = ChartBuilder::on(area)
            .caption(*name, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(65)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(e)?;
        chart.configure_mesh().x_desc(x_label).draw().map_err(e)?;
        chart.draw_series(LineSeries::new(finite, ShapeStyle::from(&BLUE).stroke_width(2))).map_err(e)?;
    }
    Ok(())
}

fn render(path: &Path, fig: &Chart) -> Result<(), Err> {
    check_path(path)?;
    let size = (1400u32, 620u32);
    register_font();
    match extension(path).as_str() {
        "svg" => {
            let root = SVGBackend::new(path, size).into_drawing_area();
            draw(&root, fig)?;
            root.present()?;
        }
        _ => {
            let mut buf = vec![0u8; (size.0 * size.1 * 3) as usize];
            {
                let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
                draw(&root, fig)?;
                root.present()?;
            }
            image::RgbImage::from_raw(size.0, size.1, buf).ok_or("plot buffer")?.save(path)?;
        }
    }
    Ok(())
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, plotters::coord::Shift>, fig: &Chart) -> Result<(), Err>
where
    DB::ErrorType: 'static,
{
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| -> Err { x.to_string().into() };
    root.fill(&WHITE).map_err(e)?;
    let (top, body) = root.split_vertically(50);
    top.draw(&Text::new(fig.title.clone(), (20, 14), ("sans-serif", 22).into_font())).map_err(e)?;
    let (left, right) = body.split_horizontally(700);

    // ROC: FAR on a log axis from one impostor pair in a thousand-ish up to 1.
    let min_far = fig.roc.iter().map(|p| p.0).filter(|&f| f > 0.0).fold(1.0, f64::min).max(1e-5) / 2.0;
    let min_tar = fig.roc.iter().filter(|p| p.0 >= min_far).map(|p| p.1).fold(1.0, f64::min);
    let y0 = (min_tar - 0.02).clamp(0.0, 0.98);
    let mut chart = ChartBuilder::on(&left)
        .caption(fig.roc_caption.clone(), ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(65)
        .build_cartesian_2d((min_far..1.0f64).log_scale(), y0..1.0f64)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(fig.roc_axes.0)
        .y_desc(fig.roc_axes.1)
        .x_label_formatter(&|v| format!("{v:.0e}"))
        .y_label_formatter(&|v| format!("{v:.3}"))
        .draw()
        .map_err(e)?;
    let curve: Vec<(f64, f64)> = fig.roc.iter().filter(|p| p.0 >= min_far).copied().collect();
    chart
        .draw_series(LineSeries::new(curve, ShapeStyle::from(&BLUE).stroke_width(3)))
        .map_err(e)?
        .label("visage")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], ShapeStyle::from(&BLUE).stroke_width(3)));
    if let Some((far, tar, label)) = fig.mark.clone().filter(|p| p.0 >= min_far) {
        chart
            .draw_series(std::iter::once(Circle::new((far, tar), 7, ShapeStyle::from(&RED).filled())))
            .map_err(e)?
            .label(label)
            .legend(|(x, y)| Circle::new((x + 12, y), 6, ShapeStyle::from(&RED).filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()
        .map_err(e)?;

    // Histograms, each normalised to its own count.
    let all = fig.first.0.iter().chain(fig.second.0).copied();
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    let bins = 60usize;
    let width = ((hi - lo) / bins as f64).max(1e-9);
    let hist = |v: &[f64]| -> Vec<(f64, f64)> {
        let mut c = vec![0f64; bins];
        for &x in v {
            c[(((x - lo) / width) as usize).min(bins - 1)] += 1.0;
        }
        let n = v.len().max(1) as f64;
        let mut pts = vec![(lo, 0.0)];
        for (i, &k) in c.iter().enumerate() {
            let (a, b) = (lo + i as f64 * width, lo + (i + 1) as f64 * width);
            pts.extend([(a, k / n), (b, k / n)]);
        }
        pts.push((hi, 0.0));
        pts
    };
    let (hg, hi_) = (hist(fig.first.0), hist(fig.second.0));
    let ymax = hg.iter().chain(&hi_).map(|p| p.1).fold(0.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&right)
        .caption(fig.hist_caption.clone(), ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(65)
        .build_cartesian_2d(lo..hi, 0.0..ymax.max(1e-6))
        .map_err(e)?;
    chart.configure_mesh().x_desc(fig.hist_axes.0.clone()).y_desc(fig.hist_axes.1).draw().map_err(e)?;
    let green = RGBColor(0, 150, 70);
    let orange = RGBColor(230, 120, 0);
    chart
        .draw_series(LineSeries::new(hg, ShapeStyle::from(&green).stroke_width(2)))
        .map_err(e)?
        .label(fig.first.1)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], ShapeStyle::from(&green).stroke_width(3)));
    chart
        .draw_series(LineSeries::new(hi_, ShapeStyle::from(&orange).stroke_width(2)))
        .map_err(e)?
        .label(fig.second.1)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], ShapeStyle::from(&orange).stroke_width(3)));
    chart
        .draw_series(LineSeries::new(vec![(fig.threshold, 0.0), (fig.threshold, ymax)], ShapeStyle::from(&RED).stroke_width(2)))
        .map_err(e)?
        .label(format!("threshold {:.3}", fig.threshold))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], ShapeStyle::from(&RED).stroke_width(3)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()
        .map_err(e)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure_of(roc: &Roc) -> Figure<'_> {
        Figure {
            title: "test figure".into(),
            roc,
            genuine: &[0.30, 0.35, 0.41, 0.52],
            impostor: &[0.58, 0.71, 0.80, 0.93],
            threshold: 0.55,
            metric: "l2",
        }
    }

    #[test]
    fn svg_and_png_plots_have_their_text() {
        let pairs: Vec<(f64, bool)> =
            [0.30, 0.35, 0.41, 0.52].iter().map(|&d| (d, true)).chain([0.58, 0.71, 0.80, 0.93].iter().map(|&d| (d, false))).collect();
        let roc = crate::roc::roc(&pairs).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("roc.svg");
        write(&svg, &figure_of(&roc)).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.contains("test figure") && text.contains("false accept rate") && text.contains("<polyline"), "{text}");
        let png = dir.path().join("roc.PNG");
        write(&png, &figure_of(&roc)).unwrap();
        assert_eq!(image::open(&png).unwrap().width(), 1400);
        // Other names are refused before anything is drawn.
        let e = write(&dir.path().join("roc.pdf"), &figure_of(&roc)).unwrap_err().to_string();
        assert!(e.contains("not .pdf"), "{e}");
        assert!(check_path(&dir.path().join("roc")).is_err());
        assert!(!dir.path().join("roc.pdf").exists());
    }
}
