'use strict';
// Places an order through the front's API, then polls for the invoice written by billing.
(function () {
  const result = document.getElementById('result');
  const show = (obj) => { result.textContent = JSON.stringify(obj, null, 2); };

  async function pollInvoice(orderId, tries) {
    const res = await fetch('/api/invoices/' + orderId);
    if (res.ok) {
      const invoice = await res.json();
      const order = await (await fetch('/api/orders/' + orderId)).json();
      show({ order: order, invoice: invoice });
    } else if (tries > 0) {
      setTimeout(() => pollInvoice(orderId, tries - 1), 500);
    }
  }

  document.querySelectorAll('button[data-product]').forEach((btn) => {
    btn.addEventListener('click', async () => {
      const id = Number(btn.dataset.product);
      const quantity = Number(document.getElementById('qty-' + id).value);
      btn.disabled = true;
      try {
        const res = await fetch('/api/orders', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ product_id: id, quantity: quantity }),
        });
        const body = await res.json();
        show({ status: res.status, order: body });
        if (res.status === 201) pollInvoice(body.id, 20);
      } catch (err) {
        show({ error: String(err) });
      } finally {
        btn.disabled = false;
      }
    });
  });
})();
