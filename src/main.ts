/**
 * Wiring only: the operator's controllers, registered with the Manager that
 * src/runtime/run.ts builds and runs. Several may be registered, each under
 * its own name; `make new-kind` adds one above each scaffold marker and
 * `make remove-kind` takes one out.
 */
import { runOperator } from './runtime/run.ts';
import { registerWebsiteController } from './website/controller.ts';
// +scaffold:imports

await runOperator((manager) => {
  registerWebsiteController(manager);
  // +scaffold:controllers
});
