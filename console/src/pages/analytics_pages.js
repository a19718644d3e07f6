// Overview, connectors, one connector, users, financial and errors pages.
import { h } from '../dom.js';
import { t, fmtNum, fmtPct, fmtMoney, fmtMinor, fmtBucket, fmtDateTime } from '../i18n.js';
import { api, query, session } from '../api.js';
import { figure, figures, section, table, chart, showError } from '../ui.js';
import { analyticsPage, rememberConnectors } from '../analytics.js';

const num = (v) => fmtNum(v);
const ms = (v) => fmtNum(v, 1);
const pct = (v) => fmtPct(v);
const enc = encodeURIComponent;

function usageSeriesChart(title, series) {
  const buckets = (series || []).map((r) => r.bucket);
  return chart(title, buckets, [
    { label: t('col.operations'), values: series.map((r) => r.operations_total), fmt: num },
    { label: t('col.errors'), values: series.map((r) => r.error_count), fmt: num },
    { label: t('col.error_rate'), values: series.map((r) => r.error_rate), fmt: pct, scale: 'y2' },
  ]);
}

const seriesColumns = () => [
  { key: 'bucket', label: t('col.bucket'), fmt: fmtBucket },
  { key: 'operations_total', label: t('col.operations'), fmt: num, num: true },
  { key: 'error_count', label: t('col.errors'), fmt: num, num: true },
  { key: 'error_rate', label: t('col.error_rate'), fmt: pct, num: true },
  { key: 'unique_users', label: t('col.unique_users'), fmt: num, num: true },
  { key: 'avg_response_time_ms', label: t('col.avg_ms'), fmt: ms, num: true },
  { key: 'p95_response_time_ms', label: t('col.p95_ms'), fmt: ms, num: true },
];

function revenueText(d) {
  if (d.revenue === null || d.revenue === undefined) return t('overview.revenue.hidden');
  return fmtMoney(d.revenue, d.currency);
}

export function overviewFigures(d, prefix) {
  return figures(
    figure(`${prefix}-active-users`, t('overview.active_users'), d.active_users, num(d.active_users)),
    figure(`${prefix}-active-subscriptions`, t('overview.active_subscriptions'), d.active_subscriptions, num(d.active_subscriptions)),
    figure(`${prefix}-operations`, t('overview.operations'), d.operations_total, num(d.operations_total)),
    figure(`${prefix}-error-rate`, t('overview.error_rate'), d.error_rate, pct(d.error_rate)),
    figure(`${prefix}-revenue`, t('overview.revenue'), d.revenue ?? null, revenueText(d)),
  );
}

export function overviewConnectorsTable(name, list, link = true) {
  return table(
    name,
    [
      { key: 'id', label: t('col.id'), link: link ? (r) => `#/connectors/${enc(r.id)}` : undefined },
      { key: 'name', label: t('col.name') },
      { key: 'active_subscriptions', label: t('col.active_subscriptions'), fmt: num, num: true },
      { key: 'operations_total', label: t('col.operations'), fmt: num, num: true },
      { key: 'error_rate', label: t('col.error_rate'), fmt: pct, num: true },
    ],
    list,
    (r) => r.id,
  );
}

export function overview(ctx) {
  return analyticsPage(ctx, {
    endpoint: 'overview',
    title: t('overview.title'),
    render(d, out) {
      rememberConnectors((d.connectors || []).map((c) => c.id));
      out.append(
        overviewFigures(d, 'overview'),
        section(t('overview.series'), usageSeriesChart(t('overview.series'), d.timeseries || []), table('overview-series', seriesColumns(), d.timeseries, (r) => r.bucket)),
        section(t('overview.connectors'), overviewConnectorsTable('overview-connectors', d.connectors)),
      );
    },
  });
}

export function connectors(ctx) {
  return analyticsPage(ctx, {
    endpoint: 'connectors',
    title: t('connectors.title'),
    render(d, out) {
      const list = d.connectors || [];
      rememberConnectors(list.map((c) => c.id));
      out.append(
        table(
          'connectors',
          [
            { key: 'id', label: t('col.id'), link: (r) => `#/connectors/${enc(r.id)}` },
            { key: 'name', label: t('col.name') },
            { key: 'active_subscriptions', label: t('col.active_subscriptions'), fmt: num, num: true },
            { key: 'operations_total', label: t('col.operations'), fmt: num, num: true },
            { key: 'error_count', label: t('col.errors'), fmt: num, num: true },
            { key: 'error_rate', label: t('col.error_rate'), fmt: pct, num: true },
            { key: 'unique_users', label: t('col.unique_users'), fmt: num, num: true },
            { key: 'avg_response_time_ms', label: t('col.avg_ms'), fmt: ms, num: true },
            { key: 'p95_response_time_ms', label: t('col.p95_ms'), fmt: ms, num: true },
          ],
          list,
          (r) => r.id,
        ),
      );
    },
  });
}

export function operationsTable(name, ops, withP95) {
  const cols = [
    { key: 'operation', label: t('col.operation') },
    { key: 'operations_total', label: t('col.operations'), fmt: num, num: true },
    { key: 'share', label: t('col.share'), fmt: pct, num: true },
    { key: 'error_count', label: t('col.errors'), fmt: num, num: true },
    { key: 'error_rate', label: t('col.error_rate'), fmt: pct, num: true },
    { key: 'avg_response_time_ms', label: t('col.avg_ms'), fmt: ms, num: true },
  ];
  if (withP95) cols.push({ key: 'p95_response_time_ms', label: t('col.p95_ms'), fmt: ms, num: true });
  return table(name, cols, ops, (r) => r.operation);
}

export function errorTypesTable(name, types) {
  return table(
    name,
    [
      { key: 'error_type', label: t('col.error_type') },
      { key: 'count', label: t('col.count'), fmt: num, num: true },
      { key: 'share', label: t('col.share'), fmt: pct, num: true },
    ],
    types,
    (r) => r.error_type,
  );
}

async function connectorIncidents(id, box) {
  const role = session.user && session.user.role;
  if (!['admin', 'manager', 'support'].includes(role)) return;
  try {
    // Open = triggered or acknowledged: the API filters one status at a time.
    const lists = await Promise.all(
      ['triggered', 'acknowledged'].map((status) => api(`/receiver/api/v1/incidents${query({ connector: id, status, limit: 500 })}`)),
    );
    const open = lists.flatMap((d) => d.incidents || []).sort((a, b) => b.id - a.id);
    box.append(
      open.length
        ? incidentsTable('connector-incidents', open)
        : h('p', { class: 'empty', 'data-testid': 'empty-connector-incidents' }, t('connector.incidents.none')),
    );
  } catch (e) {
    box.append(h('p', { class: 'alert error' }, e.message));
  }
}

export function incidentsTable(name, list) {
  return table(
    name,
    [
      { key: 'id', label: t('col.id'), link: (r) => `#/incidents/${r.id}`, fmt: (v) => `#${v}` },
      { key: 'title', label: t('col.title') },
      { key: 'severity', label: t('col.severity') },
      { key: 'status', label: t('col.status'), fmt: (v) => t(`status.${v}`) },
      { key: 'connector', label: t('col.connector'), fmt: (v) => v || t('none') },
      { key: 'created_at', label: t('col.created'), fmt: fmtDateTime },
    ],
    list,
    (r) => r.id,
  );
}

export function connector(ctx, id) {
  return analyticsPage(ctx, {
    endpoint: `connectors/${enc(id)}`,
    title: t('connector.title', { id }),
    connectorFilter: false,
    render(d, out) {
      const incidents = h('div');
      out.append(
        h('p', {}, h('a', { href: '#/connectors' }, t('connector.back'))),
        h('p', { class: 'subtitle', 'data-testid': 'connector-name', 'data-value': d.name }, d.name),
        figures(
          figure('connector-subscriptions', t('col.active_subscriptions'), d.active_subscriptions, num(d.active_subscriptions)),
          figure('connector-operations', t('col.operations'), d.operations_total, num(d.operations_total)),
          figure('connector-errors', t('col.errors'), d.error_count, num(d.error_count)),
          figure('connector-error-rate', t('col.error_rate'), d.error_rate, pct(d.error_rate)),
          figure('connector-unique-users', t('col.unique_users'), d.unique_users, num(d.unique_users)),
          figure('connector-avg-time', t('col.avg_ms'), d.avg_response_time_ms, ms(d.avg_response_time_ms)),
          figure('connector-p95-time', t('col.p95_ms'), d.p95_response_time_ms, ms(d.p95_response_time_ms)),
        ),
        section(t('connector.series'), usageSeriesChart(t('connector.series'), d.timeseries || []), table('connector-series', seriesColumns(), d.timeseries, (r) => r.bucket)),
        section(t('connector.operations_by_operation'), operationsTable('connector-operations', d.operations, true)),
        section(t('connector.errors_by_type'), errorTypesTable('connector-errors', d.errors_by_type)),
      );
      if (['admin', 'manager', 'support'].includes(session.user.role)) {
        out.append(section(t('connector.incidents'), incidents));
        connectorIncidents(id, incidents);
      }
    },
  });
}

export function users(ctx) {
  return analyticsPage(ctx, {
    endpoint: 'users',
    title: t('users.title'),
    render(d, out) {
      const tc = d.trial_conversion || {};
      const ch = d.churn || {};
      const active = d.active_users_series || [];
      const fresh = new Map((d.new_users || []).map((r) => [r.bucket, r.new_users]));
      const buckets = [...new Set([...active.map((r) => r.bucket), ...(d.new_users || []).map((r) => r.bucket)])].sort();
      const activeMap = new Map(active.map((r) => [r.bucket, r.active_users]));
      out.append(
        figures(
          figure('users-active', t('users.active'), d.active_users, num(d.active_users)),
          figure('users-new', t('users.new'), d.new_users_total, num(d.new_users_total)),
          figure('users-trial-conversion', t('users.trial_conversion'), tc.rate, pct(tc.rate), t('users.trial_detail', { converted: num(tc.converted), trials: num(tc.trials_started) })),
          figure('users-churn', t('users.churn'), ch.rate, pct(ch.rate), t('users.churn_detail', { cancelled: num(ch.cancelled), base: num((ch.active_at_start || 0) + (ch.started || 0)) })),
        ),
        section(
          t('users.series'),
          chart(t('users.series'), buckets, [
            { label: t('col.active_users'), values: buckets.map((b) => activeMap.get(b) ?? null), fmt: num },
            { label: t('col.new_users'), values: buckets.map((b) => fresh.get(b) ?? null), fmt: num },
          ]),
          table(
            'users-series',
            [
              { key: 'bucket', label: t('col.bucket'), fmt: fmtBucket },
              { key: 'active_users', label: t('col.active_users'), fmt: num, num: true },
              { key: 'new_users', label: t('col.new_users'), fmt: num, num: true },
            ],
            buckets.map((b) => ({ bucket: b, active_users: activeMap.get(b) ?? null, new_users: fresh.get(b) ?? null })),
            (r) => r.bucket,
          ),
        ),
        section(
          t('users.distribution'),
          table(
            'users-activity',
            [
              { key: 'operations', label: t('col.operations') },
              { key: 'accounts', label: t('col.accounts'), fmt: num, num: true },
            ],
            d.activity_distribution,
            (r) => r.operations,
          ),
        ),
        section(
          t('users.top'),
          table(
            'users-top',
            [
              { key: 'make_account_id', label: t('col.account') },
              { key: 'customer', label: t('col.customer') },
              { key: 'operations', label: t('col.operations'), fmt: num, num: true },
            ],
            d.top_accounts,
            (r) => r.make_account_id,
          ),
        ),
      );
    },
  });
}

export function failedByReasonTable(name, rows, currency) {
  return table(
    name,
    [
      { key: 'reason', label: t('col.reason'), fmt: (v) => t(`reason.${v}`) },
      { key: 'count', label: t('col.count'), fmt: num, num: true },
      { key: 'amount_minor', label: t('col.amount'), fmt: (v) => fmtMinor(v, currency), num: true },
    ],
    rows,
    (r) => r.reason,
  );
}

export function financial(ctx) {
  return analyticsPage(ctx, {
    endpoint: 'financial',
    title: t('financial.title'),
    render(d, out) {
      const cur = d.currency || 'RUB';
      const fp = d.failed_payments || {};
      const series = d.revenue_series || [];
      const main = series.filter((r) => r.currency === cur);
      out.append(
        figures(
          figure('financial-revenue', t('financial.revenue'), d.revenue, fmtMoney(d.revenue, cur)),
          figure('financial-arpu', t('financial.arpu'), d.arpu, fmtMoney(d.arpu, cur)),
          figure('financial-ltv', t('financial.ltv'), d.ltv, d.ltv === null || d.ltv === undefined ? t('financial.ltv.none') : fmtMoney(d.ltv, cur)),
          figure('financial-paying-customers', t('financial.paying_customers'), d.paying_customers, num(d.paying_customers)),
          figure('financial-failed-count', t('financial.failed_count'), fp.count, num(fp.count)),
          figure('financial-failed-amount', t('financial.failed_amount'), fp.amount_minor, fmtMinor(fp.amount_minor, cur)),
          figure('financial-failed-ratio', t('financial.failed_ratio'), fp.ratio, pct(fp.ratio)),
        ),
        section(
          t('financial.series'),
          chart(`${t('financial.series')} (${cur})`, main.map((r) => r.bucket), [{ label: `${t('col.revenue')}, ${cur}`, values: main.map((r) => r.revenue), fmt: (v) => fmtMoney(v, cur) }], { bars: true }),
          table(
            'financial-series',
            [
              { key: 'bucket', label: t('col.bucket'), fmt: fmtBucket },
              { key: 'currency', label: t('col.currency') },
              { key: 'revenue', label: t('col.revenue'), fmt: (v, r) => fmtMoney(v, r.currency), num: true },
            ],
            series,
            (r) => `${r.bucket}|${r.currency}`,
          ),
        ),
        section(
          t('financial.by_connector'),
          table(
            'financial-connectors',
            [
              { key: 'connector', label: t('col.connector') },
              { key: 'currency', label: t('col.currency') },
              { key: 'revenue', label: t('col.revenue'), fmt: (v, r) => fmtMoney(v, r.currency), num: true },
              { key: 'payments', label: t('col.payments'), fmt: num, num: true },
            ],
            d.revenue_by_connector,
            (r) => `${r.connector}|${r.currency}`,
          ),
        ),
        section(t('financial.failed_by_reason'), failedByReasonTable('financial-failed', fp.by_reason, cur)),
      );
    },
  });
}

export function frequentErrorsTable(name, rows) {
  return table(
    name,
    [
      { key: 'connector', label: t('col.connector') },
      { key: 'operation', label: t('col.operation') },
      { key: 'error_type', label: t('col.error_type') },
      { key: 'errors', label: t('col.errors'), fmt: num, num: true },
      { key: 'last_message', label: t('col.last_message') },
    ],
    rows,
    (r) => `${r.connector}|${r.operation}|${r.error_type}`,
  );
}

export function errors(ctx) {
  return analyticsPage(ctx, {
    endpoint: 'errors',
    title: t('errors.title'),
    render(d, out) {
      const tr = d.trend || {};
      const byPeriod = d.errors_by_period || [];
      rememberConnectors((d.errors_by_connector || []).map((r) => r.connector));
      out.append(
        figures(
          figure('errors-total', t('errors.total'), d.errors_total, num(d.errors_total)),
          figure('errors-rate', t('errors.rate'), d.error_rate, pct(d.error_rate)),
          figure('errors-previous-total', t('errors.previous'), tr.previous_errors_total, num(tr.previous_errors_total), pct(tr.previous_error_rate)),
          figure('errors-change', t('errors.change'), tr.change ?? null, tr.change === null || tr.change === undefined ? t('none') : `${tr.change > 0 ? '+' : ''}${pct(tr.change)}`),
        ),
        section(
          t('errors.series'),
          chart(t('errors.series'), byPeriod.map((r) => r.bucket), [
            { label: t('col.errors'), values: byPeriod.map((r) => r.errors), fmt: num },
            { label: t('col.error_rate'), values: byPeriod.map((r) => r.error_rate), fmt: pct, scale: 'y2' },
          ]),
          table(
            'errors-period',
            [
              { key: 'bucket', label: t('col.bucket'), fmt: fmtBucket },
              { key: 'errors', label: t('col.errors'), fmt: num, num: true },
              { key: 'error_rate', label: t('col.error_rate'), fmt: pct, num: true },
            ],
            byPeriod,
            (r) => r.bucket,
          ),
        ),
        section(
          t('errors.by_connector'),
          table(
            'errors-connectors',
            [
              { key: 'connector', label: t('col.connector') },
              { key: 'errors', label: t('col.errors'), fmt: num, num: true },
              { key: 'error_rate', label: t('col.error_rate'), fmt: pct, num: true },
            ],
            d.errors_by_connector,
            (r) => r.connector,
          ),
        ),
        section(
          t('errors.by_type'),
          table(
            'errors-types',
            [
              { key: 'error_type', label: t('col.error_type') },
              { key: 'errors', label: t('col.errors'), fmt: num, num: true },
            ],
            d.errors_by_type,
            (r) => r.error_type,
          ),
        ),
        section(t('errors.frequent'), frequentErrorsTable('errors-frequent', d.most_frequent_errors)),
      );
    },
  });
}

export { showError };
