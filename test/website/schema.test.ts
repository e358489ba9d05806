import { expect } from 'chai';
import { DEFAULTED_SPEC_FIELDS, WebsiteSpecSchema } from '../../src/website/schema.ts';

describe('the Website schema', () => {
  it('types as "never absent" exactly the Website spec fields that have a default', () => {
    const properties = (JSON.parse(JSON.stringify(WebsiteSpecSchema)) as { properties: Record<string, { default?: unknown }> }).properties;
    const defaulted = Object.entries(properties).filter(([, schema]) => schema.default !== undefined).map(([field]) => field);
    expect(defaulted).to.deep.equal([...DEFAULTED_SPEC_FIELDS]);
  });
});
