// Shared pieces of the pages: the alert region, headline figures, tables with
// stable data-testid/data-value attributes, charts, the analytics filter bar.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { h, clear, field, uid } from './dom.js';
import { t, fmtBucket, fmtDateTime, fmtNum, browserTimeZone, locale } from './i18n.js';

// The page's alert region (role="alert"): the API's message and field, or a text.
export function showError(err) {
  const box = document.getElementById('alerts');
  if (!box) return;
  clear(box);
  if (!err) return;
  const lines = [err.message || String(err)];
  if (err.field) lines.push(t('error.field', { field: err.field }));
  if (err.retryAfter) lines.push(t('error.retry', { seconds: err.retryAfter }));
  box.append(h('p', { class: 'alert error', 'data-testid': 'alert', 'data-status': err.status ?? '' }, lines.join(' ')));
}

export function showNotice(text) {
  const box = document.getElementById('alerts');
  if (!box) return;
  clear(box);
  if (text) box.append(h('p', { class: 'alert ok', 'data-testid': 'notice' }, text));
}

export function rawValue(v) {
  if (v === null || v === undefined) return 'null';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

// A headline figure: <div class="figure"><dt>label</dt><dd data-testid data-value>text</dd></div>.
export function figure(testid, label, value, text, detail) {
  return h(
    'div',
    { class: 'figure' },
    h('dt', {}, label),
    h('dd', { 'data-testid': testid, 'data-value': rawValue(value) }, text),
    detail ? h('dd', { class: 'detail' }, detail) : null,
  );
}

export function figures(...items) {
  return h('dl', { class: 'figures' }, items);
}

export function section(title, ...content) {
  const id = uid('s');
  return h('section', { 'aria-labelledby': id }, h('h2', { id }, title), content);
}

// columns: [{key, label, fmt?(value,row), value?(row), link?(row), num?}]
// Each row is <tr data-testid="row-<name>-<key(row)>">; each cell has data-field
// and data-value (the raw value of the answer, JSON for objects, "null" for null).
export function table(name, columns, rows, key, caption) {
  if (!rows || rows.length === 0) return h('p', { class: 'empty', 'data-testid': `empty-${name}` }, t('empty'));
  const head = h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : '' }, c.label)));
  const body = rows.map((row, i) =>
    h(
      'tr',
      { 'data-testid': `row-${name}-${key ? key(row, i) : i}` },
      columns.map((c) => {
        const v = c.value ? c.value(row) : row[c.key];
        const text = c.fmt ? c.fmt(v, row) : v === null || v === undefined ? t('none') : String(v);
        const content = c.link ? h('a', { href: c.link(row) }, text) : text;
        return h('td', { 'data-field': c.key, 'data-value': rawValue(v), class: c.num ? 'num' : '' }, content);
      }),
    ),
  );
  return h(
    'div',
    // Focusable: a table wider than the page scrolls, and the keyboard must reach it.
    { class: 'table-wrap', tabindex: '0' },
    h('table', { 'data-testid': `table-${name}` }, caption ? h('caption', {}, caption) : null, h('thead', {}, head), h('tbody', {}, body)),
  );
}

// A bucket key to seconds for uPlot: civil dates as local midnight (so the axis shows the same
// date), hour buckets as the instant.
function bucketSeconds(b) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(b);
  if (m) return new Date(+m[1], +m[2] - 1, +m[3]).getTime() / 1000;
  return new Date(b).getTime() / 1000;
}

const DAY_INCRS = [86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400, 91 * 86400, 182 * 86400, 364 * 86400];
const COLORS = ['#0b57d0', '#b3261e', '#146c2e', '#8a4b00', '#6b3fa0'];

// A line chart of series over buckets: series = [{label, values, fmt?}].
export function chart(title, buckets, series, opts = {}) {
  const wrap = h('figure', { class: 'chart' });
  const cap = h('figcaption', {}, title);
  const plot = h('div', { role: 'img', 'aria-label': title });
  wrap.append(cap, plot);
  if (!buckets || buckets.length === 0) {
    plot.append(h('p', { class: 'empty' }, t('empty')));
    return wrap;
  }
  const xs = buckets.map(bucketSeconds);
  const data = [xs, ...series.map((s) => s.values.map((v) => (v === null || v === undefined ? null : v)))];
  const hourly = buckets.some((b) => !/^\d{4}-\d{2}-\d{2}$/.test(b));
  const tickFmt = new Intl.DateTimeFormat(locale(), hourly ? { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' } : { day: 'numeric', month: 'short', year: '2-digit' });
  const y2 = series.find((s) => s.scale === 'y2');
  const make = () => {
    const width = Math.max(320, Math.min(plot.clientWidth || 800, 1100));
    const u = new uPlot(
      {
        width,
        height: opts.height || 240,
        series: [
          { label: t('col.bucket'), value: (u2, v, si, i) => (i === null || i === undefined ? '' : fmtBucket(buckets[i])) },
          ...series.map((s, i) => ({
            label: s.label,
            stroke: COLORS[i % COLORS.length],
            width: 2,
            scale: s.scale || 'y',
            value: (u2, v) => (v === null || v === undefined ? '—' : s.fmt ? s.fmt(v) : String(v)),
            paths: opts.bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined,
            fill: opts.bars ? `${COLORS[i % COLORS.length]}55` : undefined,
          })),
        ],
        axes: [
          {
            space: 70,
            incrs: hourly ? [3600, 3 * 3600, 6 * 3600, 12 * 3600, ...DAY_INCRS] : DAY_INCRS,
            values: (u2, splits) => splits.map((v) => tickFmt.format(new Date(v * 1000))),
          },
          { scale: 'y', size: 70, values: (u2, splits) => splits.map((v) => fmtNum(v, 2)) },
          ...(y2 ? [{ scale: 'y2', side: 1, grid: { show: false }, size: 70, values: (u2, splits) => splits.map((v) => y2.fmt(v)) }] : []),
        ],
        // One bucket: a range of one step around it (uPlot would otherwise span years).
        scales: { x: { time: true, range: (u2, min, max) => (min === max ? [min - (hourly ? 3600 : 86400), max + (hourly ? 3600 : 86400)] : [min, max]) } },
      },
      data,
      plot,
    );
    return u;
  };
  // Draw once the element is in the document (its width is known then).
  requestAnimationFrame(() => {
    if (!plot.isConnected) return;
    const u = make();
    if (typeof ResizeObserver !== 'undefined') {
      const ro = new ResizeObserver(() => {
        if (!plot.isConnected) return ro.disconnect();
        const w = Math.max(320, Math.min(plot.clientWidth, 1100));
        if (Math.abs(w - u.width) > 8) u.setSize({ width: w, height: u.height });
      });
      ro.observe(plot);
    }
  });
  return wrap;
}

// "Period: … (reporting zone …); data as of …" from an analytics answer.
export function periodLine(data) {
  if (!data || !data.period) return null;
  const p = data.period;
  return h(
    'p',
    { class: 'period', 'data-testid': 'period', 'data-from': p.from, 'data-to': p.to, 'data-time-zone': p.time_zone },
    t('period.line', {
      from: fmtDateTime(p.from),
      to: fmtDateTime(p.to),
      tz: p.time_zone,
      asof: fmtDateTime(data.as_of),
      local: browserTimeZone(),
    }),
    data.customer ? ` ${t('period.customer', { customer: data.customer })}` : '',
  );
}

export function loading(el) {
  clear(el);
  el.append(h('p', { class: 'loading', role: 'status' }, t('app.loading')));
}

export { field };
