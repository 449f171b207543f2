// PatternFly components by their own modules: importing the package's index
// would bundle every component's stylesheet (1.4 MB of CSS) for the dozen used here.
export { Alert } from "@patternfly/react-core/dist/esm/components/Alert/index.js";
export { Button } from "@patternfly/react-core/dist/esm/components/Button/index.js";
export { Card, CardBody, CardTitle } from "@patternfly/react-core/dist/esm/components/Card/index.js";
export { CodeBlock, CodeBlockCode } from "@patternfly/react-core/dist/esm/components/CodeBlock/index.js";
export {
  DescriptionList, DescriptionListDescription, DescriptionListGroup, DescriptionListTerm,
} from "@patternfly/react-core/dist/esm/components/DescriptionList/index.js";
export { ExpandableSection } from "@patternfly/react-core/dist/esm/components/ExpandableSection/index.js";
export { ActionGroup, Form, FormGroup } from "@patternfly/react-core/dist/esm/components/Form/index.js";
export { FormSelect, FormSelectOption } from "@patternfly/react-core/dist/esm/components/FormSelect/index.js";
export { Label } from "@patternfly/react-core/dist/esm/components/Label/index.js";
export { Page, PageSection } from "@patternfly/react-core/dist/esm/components/Page/index.js";
export { Spinner } from "@patternfly/react-core/dist/esm/components/Spinner/index.js";
export { TextInput } from "@patternfly/react-core/dist/esm/components/TextInput/index.js";
export { Title } from "@patternfly/react-core/dist/esm/components/Title/index.js";
export { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table/dist/esm/components/Table/index.js";
