// Behaviour shared by every page; a file of its own because the pages allow no inline script.
document.addEventListener("DOMContentLoaded", () => {
  // The language menu applies the choice at once (the form still has a button without JavaScript).
  const select = document.getElementById("lang-select");
  if (select && select.form) {
    select.addEventListener("change", () => select.form.submit());
  }
});
