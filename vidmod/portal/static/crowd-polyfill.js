/*
 * Offline stand-in for the AWS crowd HTML elements the vidmod template uses, reproducing their documented
 * answer shapes: crowd-radio-button / crowd-checkbox → {name: {<value attribute, default "on">: bool}},
 * crowd-input / crowd-text-area → {name: "text"} (empty ones omitted). crowd-form adds a submit button if
 * there is none, dispatches a cancelable "submit" event, then posts the answer to <page>/submit.
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
    set checked(value) { if (!this._input) { this.connectedCallback(); } this._input.checked = !!value; }
    answer() { var a = {}; a[this.getAttribute('value') || 'on'] = this.checked; return a; }
  }
  define('crowd-checkbox', Choice);
  define('crowd-radio-button', class extends Choice { inputType() { return 'radio'; } });

  class TextField extends HTMLElement {
    tag() { return 'input'; }
    connectedCallback() {
      if (this._field) { return; }
      var field = document.createElement(this.tag());
      if (this.getAttribute('label')) {
        var label = document.createElement('label');
        label.textContent = this.getAttribute('label');
        this.appendChild(label);
      }
      if (this.getAttribute('rows')) { field.rows = this.getAttribute('rows'); }
      field.value = this.getAttribute('value') || '';
      this.appendChild(field);
      this._field = field;
    }
    get value() { return this._field ? this._field.value : (this.getAttribute('value') || ''); }
    set value(v) { if (!this._field) { this.connectedCallback(); } this._field.value = v == null ? '' : v; }
  }
  define('crowd-input', TextField);
  define('crowd-text-area', class extends TextField { tag() { return 'textarea'; } });

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
        submit.addEventListener('click', function (event) { event.preventDefault(); form.submit(); });
      }, 0);
    }
    answer() {
      var answer = {};
      this.querySelectorAll('crowd-radio-button[name], crowd-checkbox[name]').forEach(function (el) {
        var name = el.getAttribute('name');
        answer[name] = Object.assign(answer[name] || {}, el.answer());
      });
      this.querySelectorAll('crowd-input[name], crowd-text-area[name]').forEach(function (el) {
        if (el.value !== '') { answer[el.getAttribute('name')] = el.value; }
      });
      return answer;
    }
    submit() {
      var event = new Event('submit', {cancelable: true});
      if (!this.dispatchEvent(event)) { return; }
      var status = document.getElementById('crowd-status') || document.createElement('p');
      status.id = 'crowd-status';
      this.appendChild(status);
      fetch(window.location.pathname.replace(/\/$/, '') + '/submit', {
        method: 'POST', headers: {'Content-Type': 'application/json'}, credentials: 'same-origin',
        body: JSON.stringify(this.answer())
      }).then(function (response) {
        return response.json().then(function (body) { return {ok: response.ok, body: body}; });
      }).then(function (result) {
        if (result.ok) { window.location.assign(result.body.redirect || '/'); }
        else { status.className = 'error'; status.textContent = result.body.message || 'Submission failed'; }
      });
    }
  });
})();
