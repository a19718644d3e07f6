// The analytics pages' common frame: the filter bar (period, granularity,
// connector, customer, access reason), the export links for exactly what is
// shown, and the fetch of /api/v1/analytics/<endpoint>.
import { h, clear, field } from './dom.js';
import { t } from './i18n.js';
import { api, query, session } from './api.js';
import { showError, loading, periodLine } from './ui.js';

// Connector ids seen in answers, offered as suggestions in the connector filter.
const knownConnectors = new Set();
export function rememberConnectors(ids) {
  for (const id of ids) if (id) knownConnectors.add(id);
}

// The access reason is kept for the session only (not in the address bar).
let accessReason = '';

function isoDate(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

export function defaultPeriod() {
  const today = new Date();
  const from = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 29);
  const to = new Date(today.getFullYear(), today.getMonth(), today.getDate() + 1);
  return { from: isoDate(from), to: isoDate(to) };
}

export function readFilters(q) {
  const d = defaultPeriod();
  return {
    from: q.get('from') || d.from,
    to: q.get('to') || d.to,
    granularity: q.get('granularity') || 'day',
    connector: q.get('connector') || '',
    customer: q.get('customer') || '',
  };
}

export function canFilterCustomer() {
  const r = session.user && session.user.role;
  return r === 'admin' || r === 'support';
}

function params(endpoint, f, format) {
  const p = { from: f.from, to: f.to, granularity: f.granularity };
  if (f.connector && !endpoint.startsWith('connectors/')) p.connector = f.connector;
  if (f.customer && canFilterCustomer()) p.customer = f.customer;
  if (format) p.format = format;
  // A download cannot send X-Access-Reason: support's reason goes in the link.
  if (format && needsReason(f) && accessReason) p.reason = accessReason;
  return p;
}

export function analyticsUrl(endpoint, f, format) {
  return `/api/v1/analytics/${endpoint}${query(params(endpoint, f, format))}`;
}

function needsReason(f) {
  return session.user && session.user.role === 'support' && f.customer;
}

export function fetchAnalytics(endpoint, f) {
  const headers = {};
  if (f.customer && canFilterCustomer() && accessReason.trim()) headers['X-Access-Reason'] = accessReason.trim();
  return api(analyticsUrl(endpoint, f), { headers });
}

function filterBar(route, f, opts, onApply) {
  const from = h('input', { type: 'date', name: 'from', value: f.from, required: true });
  const to = h('input', { type: 'date', name: 'to', value: f.to, required: true });
  const gran = h(
    'select',
    { name: 'granularity' },
    ['hour', 'day', 'week', 'month'].map((g) => h('option', { value: g, selected: g === f.granularity }, t(`gran.${g}`))),
  );
  const controls = [field(t('filter.from'), from), field(t('filter.to'), to), field(t('filter.granularity'), gran)];
  let connector = null;
  if (opts.connectorFilter !== false) {
    connector = h('input', {
      type: 'text',
      name: 'connector',
      value: f.connector,
      list: 'known-connectors',
      placeholder: t('filter.connector.any'),
      autocomplete: 'off',
    });
    controls.push(field(t('filter.connector'), connector));
    controls.push(h('datalist', { id: 'known-connectors' }, [...knownConnectors].sort().map((id) => h('option', { value: id }))));
  }
  let customer = null;
  let reason = null;
  if (canFilterCustomer() && opts.customerFilter !== false) {
    customer = h('input', { type: 'text', name: 'customer', value: f.customer, autocomplete: 'off' });
    controls.push(field(t('filter.customer'), customer, t('filter.customer.hint')));
    if (session.user.role === 'support') {
      reason = h('input', { type: 'text', name: 'reason', value: accessReason, autocomplete: 'off', maxlength: 1000 });
      const reasonField = field(t('filter.reason'), reason, t('filter.reason.hint'));
      const sync = () => {
        reasonField.hidden = !customer.value.trim();
        reason.required = !reasonField.hidden;
      };
      customer.addEventListener('input', sync);
      sync();
      controls.push(reasonField);
    }
  }
  const form = h(
    'form',
    {
      class: 'filters',
      'aria-label': t('filter.title'),
      'data-testid': 'filters',
      onsubmit: (e) => {
        e.preventDefault();
        if (reason) accessReason = reason.value;
        onApply({
          from: from.value,
          to: to.value,
          granularity: gran.value,
          connector: connector ? connector.value.trim() : f.connector,
          customer: customer ? customer.value.trim() : '',
        });
      },
    },
    controls,
    h('div', { class: 'field submit' }, h('button', { type: 'submit', 'data-testid': 'filters-apply' }, t('filter.apply'))),
  );
  return form;
}

function exportLinks(endpoint, f, title) {
  if (needsReason(f) && !accessReason) return h('p', { class: 'hint', 'data-testid': 'export-unavailable' }, t('export.support'));
  return h(
    'nav',
    { class: 'exports', 'aria-label': t('export.title') },
    h('span', {}, `${t('export.title')}:`),
    ['csv', 'xlsx', 'pdf'].map((fmt) =>
      h(
        'a',
        {
          class: 'button',
          href: analyticsUrl(endpoint, f, fmt),
          download: '',
          'data-testid': `export-${fmt}`,
          'aria-label': t('export.label', { format: t(`export.${fmt}`), what: title }),
        },
        t(`export.${fmt}`),
      ),
    ),
  );
}

// Renders an analytics page: the title, the filters, the exports, then
// render(data, out) with the answer of `endpoint` for the filters in the address.
export async function analyticsPage(ctx, { endpoint, title, render, connectorFilter, customerFilter }) {
  const f = readFilters(ctx.query);
  const out = h('div', { class: 'results' });
  const onApply = (nf) => {
    const q = query({ ...nf, granularity: nf.granularity === 'day' ? '' : nf.granularity });
    ctx.navigate(`#/${ctx.path}${q}`, true);
  };
  clear(ctx.main).append(
    h('h1', { tabindex: '-1' }, title),
    filterBar(ctx.path, f, { connectorFilter, customerFilter }, onApply),
    exportLinks(endpoint, f, title),
    out,
  );
  loading(out);
  try {
    const data = await fetchAnalytics(endpoint, f);
    if (!ctx.current()) return;
    clear(out);
    out.append(periodLine(data));
    render(data, out, f);
  } catch (e) {
    if (!ctx.current()) return;
    clear(out);
    showError(e);
  }
}
