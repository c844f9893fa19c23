/*
 * Offline stand-in for the AWS crowd HTML elements the vidmod template uses, reproducing their documented
 * answer shapes: crowd-radio-button / crowd-checkbox → {name: {<value attribute, default "on">: bool}},
 * crowd-classifier → {name: {label: "<chosen category>"}}, crowd-input / crowd-text-area → {name: "text"}
 * (empty ones omitted). Like the real elements, crowd-input, crowd-text-area and crowd-classifier keep their
 * inner controls in (open) shadow DOM, so key events typed into them have the host element as their target.
 * crowd-form adds a submit button if there is none, dispatches a cancelable "submit" event, then posts the
 * answer to <page>/submit (the button is disabled while the request is in flight; errors are shown).
 */
(function () {
  var groupCounter = 0;

  function define(name, cls) { if (!customElements.get(name)) { customElements.define(name, cls); } }

  define('crowd-radio-group', class extends HTMLElement {
    connectedCallback() { if (!this.dataset.group) { this.dataset.group = 'crowd-group-' + (++groupCounter); } }
  });

  class Choice extends HTMLElement {
    inputType() { return 'checkbox'; }
    connectedCallback() {
      // Upgraded as the parser meets the opening tag, before its text exists: build once the page is parsed,
      // so the text ("Reject", "false positive") is inside the label and clicking it chooses, as in AWS.
      if (this._input || this._waiting) { return; }
      if (document.readyState === 'loading') {
        this._waiting = true;
        document.addEventListener('DOMContentLoaded', this.build.bind(this));
        return;
      }
      this.build();
    }
    build() {
      if (this._input) { return; }
      var label = document.createElement('label');
      var input = document.createElement('input');
      input.type = this.inputType();
      var group = this.closest('crowd-radio-group');
      if (group) {
        if (!group.dataset.group) { group.dataset.group = 'crowd-group-' + (++groupCounter); }
        input.name = group.dataset.group;
      }
      while (this.firstChild) { label.appendChild(this.firstChild); }
      label.insertBefore(input, label.firstChild);
      this.appendChild(label);
      this._input = input;
      if (this.hasAttribute('checked')) { input.checked = true; }
      var self = this;
      input.addEventListener('change', function () { self.dispatchEvent(new Event('change', {bubbles: true})); });
    }
    get checked() { return !!(this._input && this._input.checked); }
    set checked(value) { if (!this._input) { this.build(); } this._input.checked = !!value; }
    answer() { var a = {}; a[this.getAttribute('value') || 'on'] = this.checked; return a; }
  }
  define('crowd-checkbox', Choice);
  define('crowd-radio-button', class extends Choice { inputType() { return 'radio'; } });

  class TextField extends HTMLElement {
    tag() { return 'input'; }
    connectedCallback() {
      if (this._field) { return; }
      var shadow = this.shadowRoot || this.attachShadow({mode: 'open'});
      var style = document.createElement('style');
      style.textContent = ':host { display: inline-block; } label { display: block; } textarea { width: 100%; box-sizing: border-box; }';
      shadow.appendChild(style);
      var field = document.createElement(this.tag());
      if (this.getAttribute('label')) {
        var label = document.createElement('label');
        label.textContent = this.getAttribute('label');
        label.appendChild(field);
        shadow.appendChild(label);
      } else {
        shadow.appendChild(field);
      }
      if (this.getAttribute('rows')) { field.rows = this.getAttribute('rows'); }
      if (this.getAttribute('placeholder')) { field.placeholder = this.getAttribute('placeholder'); }
      field.value = this.getAttribute('value') || '';
      this._field = field;
    }
    get value() { return this._field ? this._field.value : (this.getAttribute('value') || ''); }
    set value(v) { if (!this._field) { this.connectedCallback(); } this._field.value = v == null ? '' : v; }
  }
  define('crowd-input', TextField);
  define('crowd-text-area', class extends TextField { tag() { return 'textarea'; } });

  define('crowd-classifier', class extends HTMLElement {
    // <crowd-classifier name="..." categories='["a", "b"]' header="..."> → {name: {label: "a"}}
    connectedCallback() {
      if (this._chosen !== undefined) { return; }
      this._chosen = null;
      var shadow = this.shadowRoot || this.attachShadow({mode: 'open'});
      var self = this, categories = [];
      try { categories = JSON.parse(this.getAttribute('categories') || '[]'); } catch (e) { categories = []; }
      var fieldset = document.createElement('fieldset');
      var legend = document.createElement('legend');
      legend.textContent = this.getAttribute('header') || '';
      fieldset.appendChild(legend);
      categories.forEach(function (category) {
        var label = document.createElement('label');
        var input = document.createElement('input');
        input.type = 'radio';
        input.name = 'category';
        input.value = String(category);
        input.addEventListener('change', function () { self._chosen = input.value; });
        label.appendChild(input);
        label.appendChild(document.createTextNode(' ' + category));
        fieldset.appendChild(label);
      });
      shadow.appendChild(fieldset);
    }
    get value() { return this._chosen || ''; }
    answer() { return this._chosen ? {label: this._chosen} : null; }
  });

  define('crowd-button', class extends HTMLElement {
    connectedCallback() {
      if (this._button) { return; }
      var button = document.createElement('button');
      button.type = 'button';
      while (this.firstChild) { button.appendChild(this.firstChild); }
      this.appendChild(button);
      this._button = button;
    }
  });

  define('crowd-form', class extends HTMLElement {
    connectedCallback() {
      var form = this;
      setTimeout(function () {
        var submit = form.querySelector('crowd-button[form-action="submit"], button[type="submit"]');
        if (!submit) {
          submit = document.createElement('button');
          submit.type = 'submit';
          submit.textContent = 'Submit';
          submit.className = 'crowd-submit';
          form.appendChild(submit);
        }
        form._submitButton = submit.querySelector('button') || submit;
        submit.addEventListener('click', function (event) { event.preventDefault(); form.submit(); });
      }, 0);
    }
    answer() {
      var answer = {};
      this.querySelectorAll('crowd-radio-button[name], crowd-checkbox[name]').forEach(function (el) {
        var name = el.getAttribute('name');
        answer[name] = Object.assign(answer[name] || {}, el.answer());
      });
      this.querySelectorAll('crowd-classifier[name]').forEach(function (el) {
        var chosen = el.answer();
        if (chosen) { answer[el.getAttribute('name')] = chosen; }
      });
      this.querySelectorAll('crowd-input[name], crowd-text-area[name]').forEach(function (el) {
        if (el.value !== '') { answer[el.getAttribute('name')] = el.value; }
      });
      return answer;
    }
    status(message, kind) {
      var status = document.getElementById('crowd-status');
      if (!status) {
        status = document.createElement('p');
        status.id = 'crowd-status';
        status.setAttribute('role', 'alert');
        this.appendChild(status);
      }
      status.className = kind;
      status.textContent = message;
    }
    submit() {
      var form = this, button = this._submitButton;
      if (this._busy) { return; }
      var event = new Event('submit', {cancelable: true});
      if (!this.dispatchEvent(event)) { return; }
      this._busy = true;
      if (button) { button.disabled = true; }
      this.status('Submitting…', 'pending');
      function fail(message, final) {
        form._busy = !!final;
        if (button) { button.disabled = !!final; }
        form.status(message, 'error');
      }
      var headers = {'Content-Type': 'application/json'};
      var token = document.querySelector('meta[name="csrf-token"]');
      if (token) { headers['X-CSRF-Token'] = token.getAttribute('content'); }
      fetch(window.location.pathname.replace(/\/$/, '') + '/submit', {
        method: 'POST', headers: headers, credentials: 'same-origin', body: JSON.stringify(this.answer())
      }).then(function (response) {
        return response.text().then(function (text) {
          var body = null;
          try { body = JSON.parse(text); } catch (e) { body = null; }
          return {ok: response.ok, status: response.status, body: body};
        });
      }).then(function (result) {
        var message = result.body && typeof result.body.message === 'string' ? result.body.message : '';
        if (result.ok && result.body) { window.location.assign(result.body.redirect || '/'); }
        else if (result.status === 409) {
          fail('Not submitted: this task was already submitted or closed. ' + message, true);
        } else if (result.status === 401 || result.status === 403) {
          fail('Not submitted: ' + (message || 'you are not logged in') + '. Log in again in another tab, then retry.');
        } else {
          fail('Not submitted: ' + (message || 'the portal answered HTTP ' + result.status) +
            '. Your answers are still on this page; try again.');
        }
      }, function (error) {
        fail('Not submitted: the portal could not be reached (' + error.message +
          '). Your answers are still on this page; try again.');
      });
    }
  });
})();
