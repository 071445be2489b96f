//! Reading order of a page. A content stream draws text in whatever order its producer
//! chose: LaTeX and word processors mostly draw it as it is read, but a diagram's labels,
//! a table's cells, a reference card's boxes or a journal's floats come in drawing order,
//! and text set sideways (a landscape page, a rotated table) runs up or down the page. So
//! the glyphs of a page are laid out again as poppler's `pdftotext` reads them (the
//! reference the extraction is measured against):
//!
//! 1. each glyph is placed in the frame of its own direction (four rotations), so that
//!    sideways text has lines and words like upright text;
//! 2. glyphs drawn one after the other along a baseline make runs (as drawn, so a word
//!    drawn piecewise stays whole); runs on one baseline close to each other make a line,
//!    ordered left to right;
//! 3. lines below each other, overlapping horizontally and set in the same size, make a
//!    block (a paragraph, a column's stretch, a table cell, a label);
//! 4. blocks are ordered by Breuel's rules, as pdftotext orders them: a block comes before
//!    another that it overlaps horizontally and stands above, and before one entirely to its
//!    right unless a third block between them in height overlaps both (so a column is read
//!    to its end before the next, and a full-width heading splits the columns).

use std::cmp::Ordering;

use super::Line;

/// A glyph as drawn, in the frame of its direction: `x` along the baseline, `y` down the
/// page (for upright text, top-down page coordinates), in points.
#[derive(Clone, Debug)]
pub(super) struct Glyph {
    /// The glyph's text: `text[start..end]` of the page's text buffer.
    pub start: usize,
    pub end: usize,
    /// Direction: 0 left to right, 1 top to bottom, 2 upside down, 3 bottom to top.
    pub rot: u8,
    pub x: f64,
    pub y: f64,
    /// Advance along the baseline.
    pub width: f64,
    /// Font size on the page.
    pub size: f64,
    /// A space glyph (or a glyph with a space of its own) stood before this one.
    pub space_before: bool,
}

/// Glyphs further apart along a baseline than this many font sizes start a new run.
const RUN_GAP: f64 = 1.0;
/// Runs this close (font sizes) on one baseline are one line; further apart, a column or a
/// table cell starts. pdftotext's own word spacing limit.
const LINE_GAP: f64 = 1.5;
/// Baselines closer than this many font sizes are one line (subscripts and superscripts
/// stay on theirs).
const BASELINE: f64 = 0.5;
/// A gap over a tenth of the font size separates words (pdf-extract's and pdftotext's
/// rule).
const WORD_GAP: f64 = 0.1;
/// The largest distance from one baseline to the next within a block, in font sizes.
const LEADING: f64 = 1.5;
/// Lines whose sizes differ by more than this fraction are not one block (a heading is a
/// block of its own).
const SIZE_DELTA: f64 = 0.05;
/// How many of the latest blocks a line may join.
const RECENT_BLOCKS: usize = 200;
/// Ordering blocks costs the cube of their number; a page with more (a dense table, a
/// scatter of numbers) keeps its blocks from top to bottom.
const MAX_ORDERED_BLOCKS: usize = 300;

/// A run of glyphs drawn one after the other on a baseline.
struct Run {
    text: String,
    rot: u8,
    x0: f64,
    x1: f64,
    y: f64,
    size: f64,
    space_before: bool,
}

/// A line of a page: runs on one baseline, left to right.
struct TextLine {
    text: String,
    rot: u8,
    x0: f64,
    x1: f64,
    y: f64,
    size: f64,
}

struct Block {
    lines: Vec<TextLine>,
    rot: u8,
    x0: f64,
    x1: f64,
    /// Top (first baseline less its size) and bottom (last baseline).
    y0: f64,
    y1: f64,
}

/// A page's lines in reading order, each with its largest glyph size; an empty line marks
/// a gap, as between paragraphs.
pub(super) fn lines(text: &str, glyphs: &[Glyph]) -> Vec<Line> {
    let runs = runs(text, glyphs);
    let lines = text_lines(runs);
    let blocks = blocks(lines);
    let order = reading_order(&blocks);
    let mut out: Vec<Line> = Vec::new();
    let mut last: Option<&TextLine> = None;
    for &b in &order {
        for line in &blocks[b].lines {
            // pdf-extract's rule for a blank line: back left and down by more than 1.5
            // sizes (a paragraph gap); a column to the right does not make one.
            if let Some(prev) = last {
                let size = prev.size.max(line.size);
                if prev.rot == line.rot && line.y - prev.y > 1.5 * size && line.x0 < prev.x1 {
                    out.push(Line::new("", 0.0));
                }
            }
            out.push(Line::new(&line.text, line.size));
            last = Some(line);
        }
    }
    out
}

fn runs(text: &str, glyphs: &[Glyph]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut prev: Option<&Glyph> = None;
    for g in glyphs {
        let s = &text[g.start..g.end];
        let joins = prev.is_some_and(|p| {
            let size = p.size.max(g.size);
            p.rot == g.rot
                && (g.y - p.y).abs() <= BASELINE * size
                && g.x >= p.x + p.width - 0.5 * size
                && g.x <= p.x + p.width + RUN_GAP * size
        });
        match runs.last_mut() {
            Some(run) if joins => {
                let p = prev.expect("a run has a glyph");
                // The same glyph drawn again on itself: simulated bold, or a shadow.
                if text[p.start..p.end] == *s && (g.x - p.x).abs() < WORD_GAP * g.size {
                    continue;
                }
                if g.space_before || g.x > p.x + p.width + WORD_GAP * g.size.max(p.size) {
                    run.text.push(' ');
                }
                run.text.push_str(s);
                run.x1 = run.x1.max(g.x + g.width);
                run.size = run.size.max(g.size);
            }
            _ => runs.push(Run {
                text: s.to_string(),
                rot: g.rot,
                x0: g.x,
                x1: g.x + g.width,
                y: g.y,
                size: g.size,
                space_before: g.space_before,
            }),
        }
        prev = Some(g);
    }
    runs
}

fn cmp(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

/// Runs on one baseline, joined left to right where they are close; far apart, or apart
/// across a gutter, they stay separate lines (columns, table cells).
fn text_lines(mut runs: Vec<Run>) -> Vec<TextLine> {
    runs.sort_by(|a, b| a.rot.cmp(&b.rot).then(cmp(a.y, b.y)));
    // Bands: runs whose baselines are within reach of the first one's, left to right.
    let mut bands: Vec<Vec<Run>> = Vec::new();
    for run in runs {
        match bands.last_mut() {
            Some(band)
                if band[0].rot == run.rot
                    && run.y - band[0].y <= BASELINE * band[0].size.max(run.size) =>
            {
                band.push(run)
            }
            _ => bands.push(vec![run]),
        }
    }
    for band in &mut bands {
        band.sort_by(|a, b| cmp(a.x0, b.x0));
    }
    let mut lines = Vec::new();
    for (k, band) in bands.iter().enumerate() {
        let mut line: Option<TextLine> = None;
        for run in band {
            if let Some(l) = line.as_mut() {
                let size = l.size.max(run.size);
                let gap = run.x0 - l.x1;
                if gap <= LINE_GAP * size
                    && !(gap > RUN_GAP * size && gutter(&bands, k, l.x1, run.x0, size))
                {
                    // The same run drawn twice over itself (bold by overprinting).
                    if run.x0 < l.x1 && l.text.ends_with(&run.text) {
                        l.x1 = l.x1.max(run.x1);
                        continue;
                    }
                    if run.space_before || run.x0 > l.x1 + WORD_GAP * size {
                        l.text.push(' ');
                    }
                    l.text.push_str(&run.text);
                    l.x1 = l.x1.max(run.x1);
                    l.size = size;
                    // The baseline of the line's largest type: subscripts don't move it.
                    if run.size > l.size * 0.9 {
                        l.y = l.y.max(run.y);
                    }
                    continue;
                }
                lines.push(line.take().expect("checked"));
            }
            line = Some(TextLine {
                text: run.text.clone(),
                rot: run.rot,
                x0: run.x0,
                x1: run.x1,
                y: run.y,
                size: run.size,
            });
        }
        lines.extend(line);
    }
    lines.retain(|l| !l.text.trim().is_empty());
    lines
}

/// Whether the gap `x0..x1` on band `k` is a gutter between columns: no text of the lines
/// near it (three above, three below) crosses it, and one of them has text on both sides.
/// A wide space inside a justified line is crossed by the text of the lines around it.
fn gutter(bands: &[Vec<Run>], k: usize, x0: f64, x1: f64, size: f64) -> bool {
    let y = bands[k][0].y;
    let rot = bands[k][0].rot;
    let slack = WORD_GAP * size;
    let near = bands[k.saturating_sub(3)..(k + 4).min(bands.len())]
        .iter()
        .enumerate()
        .filter(|&(i, b)| {
            i + k.saturating_sub(3) != k && b[0].rot == rot && (b[0].y - y).abs() <= 4.0 * size
        });
    let mut both_sides = false;
    for (_, band) in near {
        if band.iter().any(|r| r.x0 < x1 - slack && r.x1 > x0 + slack) {
            return false;
        }
        both_sides |=
            band.iter().any(|r| r.x1 <= x0 + slack) && band.iter().any(|r| r.x0 >= x1 - slack);
    }
    both_sides
}

/// Lines grouped into blocks, top to bottom: a line joins the block whose last line stands
/// just above it, overlaps it horizontally and is set in its size.
fn blocks(mut lines: Vec<TextLine>) -> Vec<Block> {
    lines.sort_by(|a, b| a.rot.cmp(&b.rot).then(cmp(a.y, b.y)).then(cmp(a.x0, b.x0)));
    let mut blocks: Vec<Block> = Vec::new();
    for line in lines {
        let fits = |b: &Block| {
            let last = b.lines.last().expect("a block has a line");
            let size = last.size.max(line.size);
            b.rot == line.rot
                && line.y > last.y + 0.5 * size
                && line.y - last.y <= LEADING * size
                && (last.size - line.size).abs() <= SIZE_DELTA * size
                && line.x0 < last.x1
                && line.x1 > last.x0
        };
        // The nearest block above that fits, among the latest ones: lines come from the
        // top down, so a block left far behind cannot reach this line.
        let best = blocks
            .iter()
            .enumerate()
            .rev()
            .take(RECENT_BLOCKS)
            .take_while(|(_, b)| b.rot == line.rot)
            .filter(|(_, b)| fits(b))
            .min_by(|(_, a), (_, b)| cmp(line.y - a.y1, line.y - b.y1))
            .map(|(i, _)| i);
        match best {
            Some(i) => {
                let b = &mut blocks[i];
                b.x0 = b.x0.min(line.x0);
                b.x1 = b.x1.max(line.x1);
                b.y1 = line.y;
                b.lines.push(line);
            }
            None => blocks.push(Block {
                rot: line.rot,
                x0: line.x0,
                x1: line.x1,
                y0: line.y - line.size,
                y1: line.y,
                lines: vec![line],
            }),
        }
    }
    blocks
}

/// Block indices in reading order. Blocks of the direction with most of the text come
/// first, then the others', each direction read in its own frame.
fn reading_order(blocks: &[Block]) -> Vec<usize> {
    let mut chars = [0usize; 4];
    for b in blocks {
        chars[b.rot as usize] += b.lines.iter().map(|l| l.text.len()).sum::<usize>();
    }
    let mut rots: Vec<u8> = (0..4).filter(|&r| chars[r as usize] > 0).collect();
    rots.sort_by_key(|&r| std::cmp::Reverse(chars[r as usize]));
    let mut order = Vec::with_capacity(blocks.len());
    for rot in rots {
        let mut ids: Vec<usize> = (0..blocks.len())
            .filter(|&i| blocks[i].rot == rot)
            .collect();
        ids.sort_by(|&a, &b| cmp(blocks[a].y0, blocks[b].y0).then(cmp(blocks[a].x0, blocks[b].x0)));
        if ids.len() > MAX_ORDERED_BLOCKS {
            order.extend(ids);
            continue;
        }
        let boxes: Vec<Extent> = ids.iter().map(|&i| Extent::of(&blocks[i])).collect();
        order.extend(Order::new(boxes).sorted().into_iter().map(|k| ids[k]));
    }
    order
}

/// A block's box, its extended box (what the ordering rules compare) and its table.
#[derive(Clone, Copy)]
struct Extent {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    ex0: f64,
    ex1: f64,
    ey0: f64,
    ey1: f64,
    size: f64,
    table: Option<usize>,
}

impl Extent {
    fn of(b: &Block) -> Self {
        let size = b.lines[0].size;
        // Ascent and descent of common text faces, as fractions of the size.
        let (y0, y1) = (
            b.y0 + 0.25 * size,
            b.y1 + 0.25 * b.lines.last().map_or(size, |l| l.size),
        );
        Self {
            x0: b.x0,
            x1: b.x1,
            y0,
            y1,
            ex0: b.x0,
            ex1: b.x1,
            ey0: y0,
            ey1: y1,
            size,
            table: None,
        }
    }

    fn overlaps_y(&self, o: &Self) -> bool {
        o.y0 <= self.y1 && o.y1 >= self.y0
    }

    fn overlaps_x(&self, o: &Self) -> bool {
        o.x0 <= self.x1 && o.x1 >= self.x0
    }

    fn centre_x(&self) -> f64 {
        (self.x0 + self.x1) / 2.0
    }

    fn centre_y(&self) -> f64 {
        (self.y0 + self.y1) / 2.0
    }
}

/// Breuel's reading order over a direction's blocks, with pdftotext's refinements: blocks
/// that form a grid (a table, boxes of a diagram side by side) are read row by row, and a
/// block's box is widened over the blocks below it that fit under it, so that a column's
/// paragraphs stay together.
struct Order {
    b: Vec<Extent>,
}

impl Order {
    fn new(mut b: Vec<Extent>) -> Self {
        find_tables(&mut b);
        widen(&mut b);
        Self { b }
    }

    /// Rule 1: `a` overlaps `c` horizontally and starts above it.
    fn rule1(&self, a: usize, c: usize) -> bool {
        let (a, c) = (&self.b[a], &self.b[c]);
        let overlap = (a.ex0 <= c.ex0 && c.ex0 <= a.ex1) || (c.ex0 <= a.ex0 && a.ex0 <= c.ex1);
        overlap && a.ey0 < c.ey0
    }

    /// Rule 2: `a` ends left of where `c` starts.
    fn rule2(&self, a: usize, c: usize) -> bool {
        self.b[a].ex1 <= self.b[c].ex0
    }

    /// Whether `a` is read before `c`.
    fn before(&self, a: usize, c: usize) -> bool {
        let (ba, bc) = (&self.b[a], &self.b[c]);
        if let (Some(t), Some(u)) = (ba.table, bc.table) {
            if t == u {
                // Cells of one table: row by row, left to right.
                return (ba.x1 <= bc.x0 && ba.overlaps_y(bc)) || ba.y1 <= bc.y0;
            }
        }
        if self.rule1(a, c) {
            return true;
        }
        // Left of it, unless a block below `c` and above `a` overlaps both: then `a` is
        // further down a column that `c` heads.
        self.rule2(a, c)
            && !(0..self.b.len()).any(|m| m != a && m != c && self.rule1(c, m) && self.rule1(m, a))
    }

    /// Depth-first topological sort, visiting blocks from the top down.
    fn sorted(&self) -> Vec<usize> {
        let n = self.b.len();
        let mut done = vec![false; n];
        let mut out = Vec::with_capacity(n);
        for start in 0..n {
            if done[start] {
                continue;
            }
            done[start] = true;
            // An explicit stack: (block, next candidate predecessor to look at).
            let mut stack = vec![(start, 0usize)];
            while let Some(top) = stack.last_mut() {
                let (c, from) = *top;
                match (from..n).find(|&a| !done[a] && self.before(a, c)) {
                    Some(a) => {
                        top.1 = a + 1;
                        done[a] = true;
                        stack.push((a, 0));
                    }
                    None => {
                        out.push(c);
                        stack.pop();
                    }
                }
            }
        }
        out
    }
}

/// Marks blocks that make a grid with their neighbours (right, below, diagonal) as cells of
/// one table: aligned by their centres, left or right edges across, and by their centres,
/// tops or bottoms down.
fn find_tables(b: &mut [Extent]) {
    let n = b.len();
    let mut tables = 0;
    for i in 0..n {
        let nearest = |pick: &dyn Fn(&Extent) -> Option<f64>| {
            (0..n)
                .filter(|&j| j != i)
                .filter_map(|j| pick(&b[j]).map(|d| (j, d)))
                .min_by(|x, y| cmp(x.1, y.1))
                .map(|(j, _)| j)
        };
        let me = b[i];
        let right = nearest(&|o| (o.overlaps_y(&me) && o.x0 > me.x1).then_some(o.x0));
        let below = nearest(&|o| (o.overlaps_x(&me) && o.y0 > me.y1).then_some(o.y0));
        let (Some(r), Some(d)) = (right, below) else {
            continue;
        };
        let (br, bd) = (b[r], b[d]);
        let diagonal = nearest(&|o| {
            (o.overlaps_x(&br) && o.overlaps_y(&bd) && o.x0 > me.x1 && o.y0 > me.y1).then_some(o.y0)
        });
        let Some(g) = diagonal else {
            continue;
        };
        let bg = b[g];
        let size = me.size.min(br.size).min(bd.size).min(bg.size);
        let (dx, dy) = (0.3 * size, 0.5 * size);
        let near = |p: f64, q: f64, d: f64| (p - q).abs() <= d;
        let across = (near(me.centre_x(), bd.centre_x(), dx)
            && near(br.centre_x(), bg.centre_x(), dx))
            || (near(me.x0, bd.x0, dx) && near(br.x0, bg.x0, dx))
            || (near(me.x1, bd.x1, dx) && near(br.x1, bg.x1, dx));
        let down = (near(me.centre_y(), br.centre_y(), dy)
            && near(bd.centre_y(), bg.centre_y(), dy))
            || (near(me.y0, br.y0, dy) && near(bd.y0, bg.y0, dy))
            || (near(me.y1, br.y1, dy) && near(bd.y1, bg.y1, dy));
        if across && down {
            let id = [i, r, d, g]
                .iter()
                .filter_map(|&k| b[k].table)
                .max()
                .unwrap_or_else(|| {
                    tables += 1;
                    tables - 1
                });
            for k in [i, r, d, g] {
                b[k].table = Some(id);
            }
        }
    }
    // A table's cells are compared with other blocks as the whole table.
    for t in 0..tables {
        let cells: Vec<usize> = (0..n).filter(|&k| b[k].table == Some(t)).collect();
        let fold =
            |f: fn(&Extent) -> f64, min: bool| {
                cells.iter().map(|&k| f(&b[k])).fold(
                    if min { f64::MAX } else { f64::MIN },
                    |acc, v| if min { acc.min(v) } else { acc.max(v) },
                )
            };
        let (x0, x1, y0, y1) = (
            fold(|e| e.x0, true),
            fold(|e| e.x1, false),
            fold(|e| e.y0, true),
            fold(|e| e.y1, false),
        );
        for &k in &cells {
            b[k].ex0 = x0;
            b[k].ex1 = x1;
            b[k].ey0 = y0;
            b[k].ey1 = y1;
        }
    }
}

/// Widens each block (not in a table) over the blocks below it, as far as its neighbours on
/// either side leave room.
fn widen(b: &mut [Extent]) {
    let n = b.len();
    for i in 0..n {
        if b[i].table.is_some() {
            continue;
        }
        let me = b[i];
        let mut right_limit = f64::MAX;
        let mut left_limit = f64::MIN;
        for (j, o) in b.iter().enumerate() {
            if j != i && me.overlaps_y(o) {
                if o.x0 > me.x1 {
                    right_limit = right_limit.min(o.x0);
                }
                if o.x1 < me.x0 {
                    left_limit = left_limit.max(o.x1);
                }
            }
        }
        let (mut ex0, mut ex1) = (me.ex0, me.ex1);
        for (j, o) in b.iter().enumerate() {
            if j != i && o.y0 >= me.y1 {
                if o.x1 > ex1 && o.x1 <= right_limit {
                    ex1 = o.x1;
                }
                if o.x0 < ex0 && o.x0 >= left_limit {
                    ex0 = o.x0;
                }
            }
        }
        b[i].ex0 = ex0;
        b[i].ex1 = ex1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words placed on a page: (text, x, y) in 10-point type, 6 points a character.
    fn page(words: &[(&str, f64, f64)], rot: u8) -> Vec<String> {
        let mut text = String::new();
        let mut glyphs = Vec::new();
        for (w, x, y) in words {
            for (i, c) in w.chars().enumerate() {
                let start = text.len();
                text.push(c);
                glyphs.push(Glyph {
                    start,
                    end: text.len(),
                    rot,
                    x: x + 6.0 * i as f64,
                    y: *y,
                    width: 6.0,
                    size: 10.0,
                    space_before: false,
                });
            }
        }
        lines(&text, &glyphs)
            .into_iter()
            .map(|l| l.text)
            .filter(|t| !t.is_empty())
            .collect()
    }

    #[test]
    fn words_on_a_baseline_read_left_to_right_whatever_the_drawing_order() {
        assert_eq!(
            page(&[("world", 110.0, 100.0), ("hello", 72.0, 100.0)], 0),
            ["hello world"]
        );
    }

    #[test]
    fn columns_are_read_one_after_the_other() {
        // Drawn line by line across both columns, as some producers draw them.
        let lines = page(
            &[
                ("left one", 72.0, 100.0),
                ("right one", 300.0, 100.0),
                ("left two", 72.0, 112.0),
                ("right two", 300.0, 112.0),
            ],
            0,
        );
        assert_eq!(lines, ["left one", "left two", "right one", "right two"]);
    }

    #[test]
    fn a_narrow_gutter_splits_lines_a_wide_space_does_not() {
        // Columns 12 points (1.2 sizes) apart, on the same baselines: the gap is a gutter
        // because no line crosses it.
        let columns: Vec<(&str, f64, f64)> = (0..4)
            .flat_map(|i| {
                let y = 100.0 + 12.0 * i as f64;
                [
                    ("left column text", 72.0, y),
                    ("right column text", 180.0, y),
                ]
            })
            .collect();
        let lines = page(&columns, 0);
        assert_eq!(lines.len(), 8, "{lines:?}");
        assert!(
            lines[..4].iter().all(|l| l == "left column text"),
            "{lines:?}"
        );
        // The same gap once in a paragraph whose other lines run across it: one line.
        let lines = page(
            &[
                ("a line running all the way across", 72.0, 100.0),
                ("a wide", 72.0, 112.0),
                ("space", 120.0, 112.0),
                ("a line running all the way across", 72.0, 124.0),
            ],
            0,
        );
        assert_eq!(lines[1], "a wide space", "{lines:?}");
    }

    #[test]
    fn a_full_width_heading_splits_the_columns() {
        let lines = page(
            &[
                ("a1", 72.0, 100.0),
                ("b1", 300.0, 100.0),
                ("a2", 72.0, 112.0),
                ("b2", 300.0, 112.0),
                (
                    "A heading across the whole page width, both columns",
                    72.0,
                    140.0,
                ),
                ("c1", 72.0, 170.0),
                ("d1", 300.0, 170.0),
            ],
            0,
        );
        assert_eq!(
            lines,
            [
                "a1",
                "a2",
                "b1",
                "b2",
                "A heading across the whole page width, both columns",
                "c1",
                "d1"
            ]
        );
    }

    #[test]
    fn labels_in_a_grid_are_read_row_by_row() {
        // Two boxes of a class diagram side by side, labels drawn in no particular order.
        let lines = page(
            &[
                ("Invoice", 300.0, 192.0),
                ("number: Integer", 72.0, 232.0),
                ("Customer", 72.0, 192.0),
                ("amount: Decimal", 300.0, 232.0),
                ("name: String", 72.0, 217.0),
                ("date: Date", 300.0, 217.0),
            ],
            0,
        );
        assert_eq!(
            lines,
            [
                "Customer",
                "Invoice",
                "name: String",
                "number: Integer",
                "date: Date",
                "amount: Decimal"
            ]
        );
    }

    #[test]
    fn sideways_text_keeps_its_words_and_lines() {
        // Text running up the page, drawn in its own frame: the same reading.
        assert_eq!(
            page(&[("rotated", 72.0, 100.0), ("page", 120.0, 100.0)], 3),
            ["rotated page"]
        );
    }

    #[test]
    fn overprinted_bold_is_read_once() {
        assert_eq!(
            page(&[("Bold", 72.0, 100.0), ("Bold", 72.3, 100.0)], 0),
            ["Bold"]
        );
    }
}
