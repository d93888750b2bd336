#[tokio::main]
async fn main() -> anyhow::Result<()> {
    sales_block::app::cli::run().await
}
