// The login form: POST /console/api/login; 401 names the field, 429 says how long to wait.
import { h, clear, field } from '../dom.js';
import { t } from '../i18n.js';
import { login } from '../api.js';
import { showError } from '../ui.js';

export function loginPage(ctx, onLoggedIn) {
  const name = h('input', { type: 'text', name: 'name', autocomplete: 'username', required: true, 'data-testid': 'login-name' });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true, 'data-testid': 'login-password' });
  const submit = h('button', { type: 'submit', 'data-testid': 'login-submit' }, t('login.submit'));
  let timer = null;
  const form = h(
    'form',
    {
      class: 'login stack',
      'data-testid': 'login-form',
      onsubmit: async (e) => {
        e.preventDefault();
        submit.disabled = true;
        try {
          const user = await login(name.value, password.value);
          showError(null);
          onLoggedIn(user);
        } catch (err) {
          password.value = '';
          if (err.status === 429 && err.retryAfter) {
            let left = err.retryAfter;
            const tick = () => {
              showError({ message: t('login.wait', { seconds: left }), status: 429 });
              if (left <= 0) {
                clearInterval(timer);
                timer = null;
                submit.disabled = false;
                showError(null);
              }
              left -= 1;
            };
            clearInterval(timer);
            tick();
            timer = setInterval(tick, 1000);
            return;
          }
          showError(err);
          const target = err.field === 'password' ? password : name;
          target.setAttribute('aria-invalid', 'true');
          target.focus();
        }
        submit.disabled = false;
      },
    },
    field(t('login.name'), name),
    field(t('login.password'), password),
    h('div', {}, submit),
  );
  clear(ctx.main).append(h('h1', { tabindex: '-1' }, t('login.title')), form);
  name.focus();
}
