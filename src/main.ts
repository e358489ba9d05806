/**
 * Wiring only: the operator's controllers, registered with the Manager that
 * src/runtime/run.ts builds and runs. Register yours here when you copy the
 * project (several may be registered, each under its own name).
 */
import { runOperator } from './runtime/run.ts';
import { registerWebsiteController } from './website/controller.ts';

await runOperator((manager) => {
  registerWebsiteController(manager);
});
