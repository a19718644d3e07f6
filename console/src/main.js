// The console's entry: session check, hash routing, navigation by role, language.
import './style.css';
import { h, clear } from './dom.js';
import { t, getLang, setLang, LANGUAGES } from './i18n.js';
import { session, loadSession, logout, setUnauthorizedHandler } from './api.js';
import { showError } from './ui.js';
import { overview, connectors, connector, users, financial, errors } from './pages/analytics_pages.js';
import { incidents, incident, oncall, maintenance, audit } from './pages/ops.js';
import { my } from './pages/my.js';
import { loginPage } from './pages/login.js';

const STAFF = ['admin', 'manager', 'support'];
// Who may open each page (docs/ACCESS.md, docs/INCIDENTS.md, docs/NOTICES.md).
const ROUTES = [
  { re: /^overview$/, nav: 'overview', roles: STAFF, page: overview },
  { re: /^connectors$/, nav: 'connectors', roles: STAFF, page: connectors },
  { re: /^connectors\/(.+)$/, roles: STAFF, page: (ctx, m) => connector(ctx, decodeURIComponent(m[1])) },
  { re: /^users$/, nav: 'users', roles: ['admin', 'manager'], page: users },
  { re: /^financial$/, nav: 'financial', roles: ['admin', 'manager'], page: financial },
  { re: /^errors$/, nav: 'errors', roles: STAFF, page: errors },
  { re: /^incidents$/, nav: 'incidents', roles: STAFF, page: incidents },
  { re: /^incidents\/(\d+)$/, roles: STAFF, page: (ctx, m) => incident(ctx, m[1]) },
  { re: /^oncall$/, nav: 'oncall', roles: STAFF, page: oncall },
  { re: /^maintenance$/, nav: 'maintenance', roles: STAFF, page: maintenance },
  { re: /^audit$/, nav: 'audit', roles: ['admin'], page: audit },
  { re: /^my$/, nav: 'my', roles: ['user'], page: my },
];

let renderToken = 0;
let returnTo = '';

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const qi = raw.indexOf('?');
  const path = qi < 0 ? raw : raw.slice(0, qi);
  return { path, query: new URLSearchParams(qi < 0 ? '' : raw.slice(qi + 1)) };
}

function home() {
  return session.user && session.user.role === 'user' ? '#/my' : '#/overview';
}

function navigate(hash, force) {
  if (location.hash === hash) {
    if (force) route();
  } else {
    location.hash = hash;
  }
}

function renderShell(activeNav) {
  const header = document.getElementById('header');
  const nav = document.getElementById('nav');
  clear(header);
  clear(nav);
  document.getElementById('skip').textContent = t('app.skip');
  const langSelect = h(
    'select',
    { id: 'lang', 'data-testid': 'lang', onchange: (e) => { setLang(e.target.value); route(true); } },
    LANGUAGES.map((l) => h('option', { value: l.code, selected: l.code === getLang(), lang: l.code }, l.name)),
  );
  header.append(
    h('a', { class: 'brand', href: session.user ? home() : '#/login' }, 'BPM Centr'),
    h(
      'div',
      { class: 'tools' },
      session.user
        ? h('span', { class: 'who', 'data-testid': 'whoami', 'data-role': session.user.role }, t('app.user', { name: session.user.name, role: t(`role.${session.user.role}`) }))
        : null,
      h('label', { for: 'lang' }, t('app.language')),
      langSelect,
      session.user
        ? h(
            'button',
            {
              type: 'button',
              'data-testid': 'logout',
              onclick: async () => {
                try {
                  await logout();
                } catch (e) {
                  showError(e);
                }
                navigate('#/login', true);
              },
            },
            t('app.logout'),
          )
        : null,
    ),
  );
  nav.hidden = !session.user;
  if (!session.user) return;
  nav.setAttribute('aria-label', t('app.nav'));
  const items = ROUTES.filter((r) => r.nav && r.roles.includes(session.user.role));
  nav.append(
    h(
      'ul',
      {},
      items.map((r) =>
        h(
          'li',
          {},
          h('a', { href: `#/${r.nav}`, 'data-testid': `nav-${r.nav}`, 'aria-current': r.nav === activeNav ? 'page' : null }, t(`nav.${r.nav}`)),
        ),
      ),
    ),
  );
}

async function route(keepAlerts) {
  renderToken += 1;
  const token = renderToken;
  const { path, query } = parseHash();
  const main = document.getElementById('main');
  if (!keepAlerts) showError(null);
  const ctx = {
    main,
    path,
    query,
    navigate,
    current: () => token === renderToken,
    rerender: () => route(true),
  };
  if (!session.user) {
    if (path !== 'login') returnTo = location.hash;
    renderShell('');
    if (path !== 'login') return navigate('#/login');
    loginPage(ctx, () => {
      const target = returnTo && returnTo !== '#/login' ? returnTo : home();
      returnTo = '';
      navigate(target, true);
    });
    return;
  }
  if (path === '' || path === 'login') return navigate(home(), true);
  const found = ROUTES.map((r) => [r, r.re.exec(path)]).find(([, m]) => m);
  // A detail page highlights its list in the navigation.
  const navKey = found ? found[0].nav || path.split('/')[0] : '';
  renderShell(navKey);
  if (!found) {
    clear(main).append(h('h1', { tabindex: '-1' }, t('error.notfound')));
    return;
  }
  const [r, m] = found;
  if (!r.roles.includes(session.user.role)) {
    clear(main).append(h('h1', { tabindex: '-1' }, t('error.forbidden')));
    return;
  }
  const done = r.page(ctx, m);
  if (!keepAlerts) {
    const h1 = main.querySelector('h1');
    if (h1) h1.focus({ preventScroll: true });
  }
  await done;
}

async function start() {
  setLang(getLang());
  document.getElementById('skip').addEventListener('click', (e) => {
    e.preventDefault();
    document.getElementById('main').focus();
  });
  setUnauthorizedHandler(() => {
    session.user = null;
    session.csrf = '';
    navigate('#/login', true);
  });
  try {
    await loadSession();
  } catch (e) {
    showError(e);
  }
  window.addEventListener('hashchange', () => route());
  route();
}

start();
